//! The local command: score one file, local or on S3, with a model from the
//! registry that `MODEL_REPOSITORY` names, and print the summary as JSON.
//! It runs the same job as the Lambda function, but always scores: it does
//! not skip a file that an earlier summary covers.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Parser;
use shared::models::Models;
use shared::store::fs::FolderStore;
use shared::store::s3::S3Store;
use shared::store::ObjectStore;

use crate::config::Config;
use crate::layout::{map_key, split_format, Format, OutputKeys};
use crate::service::{score_file, FileJob};
use crate::summary::{InputIdentity, Status, Summary};

#[derive(Debug, Parser)]
#[command(
    name = "batch-score",
    about = "Score a CSV or JSON Lines file with a registered model and print the summary as JSON",
    after_help = "Reads the registry from MODEL_REPOSITORY, and S3 settings from the standard AWS variables. \
                  Exit status: 0 when the file was scored, 1 when it was rejected (the summary says why), \
                  2 when it could not be read or written."
)]
pub struct Args {
    /// Input file: a local path or `s3://bucket/key`, named `.csv`, `.jsonl` or `.ndjson`, optionally
    /// followed by `.gz`.
    pub input: String,

    /// Model as `name` or `name:version`, where version is a number or an alias such as `production`
    /// [default: `latest` of the model folder of an `s3://` key under BATCH_INPUT_PREFIX].
    #[arg(long)]
    pub model: Option<String>,

    /// Path or `s3://bucket/key` of the scored rows. The `.errors.jsonl` and `.summary.json` files go
    /// beside it [default: `<input name>.out.csv` (or `.out.jsonl`) next to a local input, or the same path
    /// under BATCH_OUTPUT_PREFIX for an `s3://` input under BATCH_INPUT_PREFIX].
    #[arg(long)]
    pub output: Option<String>,
}

/// Runs the command and returns the process exit status.
pub async fn main() -> i32 {
    let args = Args::parse();
    match run(args).await {
        Ok(summary) => {
            // A closed stdout, as in `batch-score ... | head`, is not an
            // error of the job, whose results are already written.
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(&summary.to_json()).and_then(|()| stdout.flush());
            let rows = &summary.rows;
            if summary.status != Status::Succeeded {
                1
            } else if rows.scored == 0 && rows.failed > 0 {
                let errors = summary.outputs.as_ref().map(|o| o.errors.as_str()).unwrap_or_default();
                eprintln!("error: none of the {} rows could be scored; the reasons are in `{errors}`", rows.failed);
                1
            } else {
                0
            }
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            2
        }
    }
}

/// A file's store and key: a folder store for a local path, an S3 store on
/// the bucket for an `s3://` URL.
struct Place {
    store: Arc<dyn ObjectStore>,
    key: String,
    bucket: Option<String>,
    /// The folder of a local path.
    folder: Option<PathBuf>,
}

impl Place {
    /// Returns whether `key` at this place is the same object as `other`.
    fn holds_same(&self, key: &str, other: &Place) -> bool {
        match (&self.folder, &other.folder) {
            (Some(folder), Some(other_folder)) => {
                let canonical = |path: PathBuf| path.canonicalize().ok();
                // A file that does not exist yet cannot be the input.
                canonical(folder.join(key)).is_some_and(|path| Some(path) == canonical(other_folder.join(&other.key)))
            }
            (None, None) => self.bucket == other.bucket && key == other.key,
            _ => false,
        }
    }
}

async fn place(text: &str, force_path_style: bool) -> anyhow::Result<Place> {
    if let Some(rest) = text.strip_prefix("s3://") {
        let Some((bucket, key)) = rest.split_once('/').filter(|(b, k)| !b.is_empty() && !k.is_empty()) else {
            bail!("invalid S3 URL `{text}`; use `s3://bucket/key`");
        };
        let client = shared::store::s3::client(force_path_style).await;
        let store = Arc::new(S3Store::new(client, bucket.to_string(), String::new()));
        return Ok(Place { store, key: key.to_string(), bucket: Some(bucket.to_string()), folder: None });
    }
    let path = Path::new(text);
    let name = path.file_name().and_then(|n| n.to_str()).with_context(|| format!("`{text}` is not a file path"))?;
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok(Place { store: Arc::new(FolderStore::new(&folder)), key: name.to_string(), bucket: None, folder: Some(folder) })
}

/// Splits `name[:version]`.
fn parse_model(text: &str) -> (String, Option<String>) {
    match text.split_once(':') {
        Some((name, version)) => (name.to_string(), Some(version.to_string())),
        None => (text.to_string(), None),
    }
}

/// Keys of the errors and summary files beside a chosen scored-rows path:
/// `results.out.csv` and `results.csv` both give `results.errors.jsonl`.
fn outputs_beside(scored: &str, format: Format) -> OutputKeys {
    let stem = scored
        .strip_suffix(&format!(".out.{}", format.extension()))
        .or_else(|| split_format(scored).map(|(stem, _)| stem))
        .unwrap_or(scored);
    OutputKeys { scored: scored.to_string(), ..OutputKeys::from_stem(stem, format) }
}

async fn run(args: Args) -> anyhow::Result<Summary> {
    let config = Config::from_env()?;
    let models = Models::from_config(&config.shared).await.context("failed to open the model registry")?;
    let input = place(&args.input, config.shared.force_path_style).await?;
    let (stem, format) = split_format(&input.key)
        .with_context(|| format!("`{}` has an unsupported file type; name it `.csv`, `.jsonl` or `.ndjson`, optionally followed by `.gz`", args.input))?;
    let mapped = input.bucket.as_ref().and_then(|_| map_key(&input.key, &config.input_prefix, &config.output_prefix));

    let model = match (&args.model, &mapped) {
        (Some(text), _) => parse_model(text),
        (None, Some(mapped)) if mapped.model.is_some() => (mapped.model.clone().unwrap_or_default(), mapped.version.clone()),
        (None, _) => bail!("no model given; pass `--model <name>[:<version>]`"),
    };
    let (output, outputs) = match &args.output {
        Some(text) => {
            let output = place(text, config.shared.force_path_style).await?;
            // Results keep the input's format, so a name that says otherwise
            // would mislabel the file.
            if let Some((_, named)) = split_format(&output.key).filter(|(_, named)| named.format != format.format || named.gzip) {
                let expected = format.format.extension();
                let named = format!("{}{}", named.format.extension(), if named.gzip { ".gz" } else { "" });
                bail!("--output `{text}` names a .{named} file, but the results of this input are uncompressed .{expected}; name it `<name>.out.{expected}`");
            }
            let keys = outputs_beside(&output.key, format.format);
            (output, keys)
        }
        None => {
            let keys = match &mapped {
                Some(mapped) => mapped.outputs.clone(),
                None => OutputKeys::from_stem(stem, format.format),
            };
            let place = Place { store: input.store.clone(), key: keys.scored.clone(), bucket: input.bucket.clone(), folder: input.folder.clone() };
            (place, keys)
        }
    };
    for key in [&outputs.scored, &outputs.errors, &outputs.summary] {
        if output.holds_same(key, &input) {
            bail!("the output file `{key}` would overwrite the input `{}`; choose another --output", args.input);
        }
    }

    let identity = match &input.bucket {
        Some(bucket) => {
            let info = input.store.head(&input.key).await?.with_context(|| format!("`{}` does not exist", args.input))?;
            InputIdentity {
                bucket: Some(bucket.clone()),
                key: input.key.clone(),
                etag: Some(info.etag.trim_matches('"').to_string()),
                version_id: info.version_id,
                size: Some(info.size),
            }
        }
        None => {
            let metadata = std::fs::metadata(&args.input).with_context(|| format!("failed to read `{}`", args.input))?;
            InputIdentity { bucket: None, key: args.input.clone(), etag: None, version_id: None, size: Some(metadata.len()) }
        }
    };
    let job = FileJob {
        input: input.store.as_ref(),
        input_key: &input.key,
        identity,
        format: Some(format),
        output: output.store.as_ref(),
        outputs: &outputs,
        model: Some(model),
        input_prefix: &config.input_prefix,
        chunk_rows: config.chunk_rows,
    };
    let summary = score_file(&models, job).await?;
    output
        .store
        .put(&outputs.summary, summary.to_json())
        .await
        .with_context(|| format!("failed to write the summary `{}`", output.store.describe(&outputs.summary)))?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_argument_splits_version() {
        assert_eq!(parse_model("esol-solubility"), ("esol-solubility".into(), None));
        assert_eq!(parse_model("esol-solubility:2"), ("esol-solubility".into(), Some("2".into())));
        assert_eq!(parse_model("m:production"), ("m".into(), Some("production".into())));
    }

    #[test]
    fn chosen_output_gets_errors_and_summary_beside_it() {
        let keys = outputs_beside("results.out.csv", Format::Csv);
        assert_eq!(keys.scored, "results.out.csv");
        assert_eq!(keys.errors, "results.errors.jsonl");
        assert_eq!(keys.summary, "results.summary.json");
        let keys = outputs_beside("scored.csv", Format::Csv);
        assert_eq!(keys.errors, "scored.errors.jsonl");
        let keys = outputs_beside("scored", Format::Jsonl);
        assert_eq!(keys.summary, "scored.summary.json");
    }
}
