//! Key layout in the bucket: an upload under
//! `<input prefix><model>/[v<version>/]<path>` names the model, and its
//! results go to the same path under the output prefix, with the format
//! suffix replaced by `.out.csv` (or `.out.jsonl`), `.errors.jsonl` and
//! `.summary.json`.

use serde::{Deserialize, Serialize};

/// Row format of an input file, which its results keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Jsonl,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
        }
    }
}

/// Format and compression of an input, taken from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputFormat {
    pub format: Format,
    pub gzip: bool,
}

/// Name endings that are read, longest first so `.csv.gz` wins over `.gz`.
const SUFFIXES: [(&str, Format, bool); 6] = [
    (".csv.gz", Format::Csv, true),
    (".jsonl.gz", Format::Jsonl, true),
    (".ndjson.gz", Format::Jsonl, true),
    (".csv", Format::Csv, false),
    (".jsonl", Format::Jsonl, false),
    (".ndjson", Format::Jsonl, false),
];

/// Splits a file name or key into its stem and format, ignoring case in the
/// suffix. Returns `None` for any other ending.
pub fn split_format(name: &str) -> Option<(&str, InputFormat)> {
    let lower = name.to_ascii_lowercase();
    SUFFIXES.iter().find(|(suffix, ..)| lower.ends_with(suffix)).map(|&(suffix, format, gzip)| {
        (&name[..name.len() - suffix.len()], InputFormat { format, gzip })
    })
}

/// Keys of the three results of one input. Results are never compressed,
/// whatever the input was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputKeys {
    /// The input's rows with their predictions, in input order.
    pub scored: String,
    /// One JSON line per row that could not be scored.
    pub errors: String,
    pub summary: String,
}

impl OutputKeys {
    /// Builds the keys from `stem`, the input's path without its format
    /// suffix.
    pub fn from_stem(stem: &str, format: Format) -> Self {
        OutputKeys {
            scored: format!("{stem}.out.{}", format.extension()),
            errors: format!("{stem}.errors.jsonl"),
            summary: format!("{stem}.summary.json"),
        }
    }
}

/// Model, version, format and result keys taken from the key of an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchKey {
    /// First folder under the input prefix; `None` for a file directly in it.
    pub model: Option<String>,
    /// Number of a `v<number>` folder after the model; `None` means `latest`.
    pub version: Option<String>,
    /// `None` when the name has no supported suffix.
    pub format: Option<InputFormat>,
    pub outputs: OutputKeys,
}

/// Maps an uploaded key to its model and result keys. Returns `None` for keys
/// outside `input_prefix` and for folder markers, which are not uploads to
/// score.
pub fn map_key(key: &str, input_prefix: &str, output_prefix: &str) -> Option<BatchKey> {
    let relative = key.strip_prefix(input_prefix).filter(|rest| !rest.is_empty() && !rest.ends_with('/'))?;
    let parts: Vec<&str> = relative.split('/').collect();
    let (model, version) = match parts.as_slice() {
        [_file] => (None, None),
        [model, version, _, ..] if is_version_folder(version) => (Some(model.to_string()), Some(version[1..].to_string())),
        [model, _, ..] => (Some(model.to_string()), None),
        [] => return None,
    };
    let (outputs, format) = match split_format(relative) {
        Some((stem, format)) => (OutputKeys::from_stem(&format!("{output_prefix}{stem}"), format.format), Some(format)),
        // The summary of an unreadable upload still goes beside where its
        // results would be, so the uploader finds the reason.
        None => (OutputKeys::from_stem(&format!("{output_prefix}{relative}"), Format::Csv), None),
    };
    Some(BatchKey { model, version, format, outputs })
}

fn is_version_folder(segment: &str) -> bool {
    segment.len() > 1 && segment.starts_with('v') && segment[1..].bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(key: &str) -> BatchKey {
        map_key(key, "batch/input/", "batch/output/").unwrap()
    }

    #[test]
    fn csv_key_mirrors_under_output_prefix() {
        let mapped = map("batch/input/esol-solubility/runs/2026/esol.csv");
        assert_eq!(mapped.model.as_deref(), Some("esol-solubility"));
        assert_eq!(mapped.version, None);
        assert_eq!(mapped.format, Some(InputFormat { format: Format::Csv, gzip: false }));
        assert_eq!(mapped.outputs.scored, "batch/output/esol-solubility/runs/2026/esol.out.csv");
        assert_eq!(mapped.outputs.errors, "batch/output/esol-solubility/runs/2026/esol.errors.jsonl");
        assert_eq!(mapped.outputs.summary, "batch/output/esol-solubility/runs/2026/esol.summary.json");
    }

    #[test]
    fn version_folder_selects_version() {
        let mapped = map("batch/input/esol-solubility/v2/part.jsonl.gz");
        assert_eq!(mapped.version.as_deref(), Some("2"));
        assert_eq!(mapped.format, Some(InputFormat { format: Format::Jsonl, gzip: true }));
        assert_eq!(mapped.outputs.scored, "batch/output/esol-solubility/v2/part.out.jsonl");

        // A file named like a version folder, or a folder that only starts
        // with `v`, is not one.
        assert_eq!(map("batch/input/m/v2.csv").version, None);
        assert_eq!(map("batch/input/m/vx/a.csv").version, None);
    }

    #[test]
    fn gzip_csv_results_are_uncompressed() {
        let mapped = map("batch/input/m/data.CSV.GZ");
        assert_eq!(mapped.format, Some(InputFormat { format: Format::Csv, gzip: true }));
        assert_eq!(mapped.outputs.scored, "batch/output/m/data.out.csv");
    }

    #[test]
    fn decoded_special_characters_are_kept() {
        let mapped = map("batch/input/esol-solubility/données/my file (1)+a=b.csv");
        assert_eq!(mapped.outputs.scored, "batch/output/esol-solubility/données/my file (1)+a=b.out.csv");
    }

    #[test]
    fn unsupported_suffix_and_missing_model_are_reported() {
        let mapped = map("batch/input/m/notes.txt");
        assert_eq!(mapped.format, None);
        assert_eq!(mapped.outputs.summary, "batch/output/m/notes.txt.summary.json");
        assert_eq!(map("batch/input/loose.csv").model, None);
    }

    #[test]
    fn keys_outside_input_prefix_are_ignored() {
        assert_eq!(map_key("batch/output/m/a.out.csv", "batch/input/", "batch/output/"), None);
        assert_eq!(map_key("batch/input/m/", "batch/input/", "batch/output/"), None);
        assert_eq!(map_key("batch/input/", "batch/input/", "batch/output/"), None);
    }
}
