//! The write side of a job: scored rows with their predictions, in the
//! input's format, and one JSON line per row that could not be scored.
//!
//! CSV rows keep every input cell and gain prediction columns: the output's
//! name (`<name>_<i>` when it has several values per row), or for a
//! classifier `label` and one `probability_<label>` column per class. A
//! prediction column whose name is already an input column is written as
//! `predicted_<name>`. JSON Lines rows keep their fields other than the
//! features and gain `prediction`, the same value the V1 predict endpoint
//! returns for that row.

use std::sync::Arc;

use shared::features::{best_class, predictions, probability_output};
use shared::manifest::{Manifest, TensorSpec};
use shared::tract_onnx::prelude::{DatumType, Tensor};
use shared::Error;

use crate::input::{PassThrough, RowError};

/// Output values of one mini-batch, copied out of the tensor in its own
/// element type so each is printed in its shortest exact form. `Text` is for
/// the string labels that classifiers with string classes return.
enum Numbers {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
    Text(Vec<String>),
}

impl Numbers {
    fn from_tensor(spec: &TensorSpec, tensor: &Tensor) -> shared::Result<Self> {
        let invalid = |err: shared::tract_onnx::prelude::TractError| Error::Inference {
            model: String::new(),
            reason: format!("output `{}` cannot be read: {err}", spec.name),
        };
        fn copy<T: shared::tract_onnx::prelude::Datum + Copy>(tensor: &Tensor) -> shared::tract_onnx::prelude::TractResult<Vec<T>> {
            Ok(tensor.try_as_plain_ram()?.as_slice::<T>()?.to_vec())
        }
        Ok(match tensor.datum_type() {
            DatumType::F32 => Numbers::F32(copy(tensor).map_err(invalid)?),
            DatumType::F64 => Numbers::F64(copy(tensor).map_err(invalid)?),
            DatumType::F16 => Numbers::F32(copy(&*tensor.cast_to::<f32>().map_err(invalid)?).map_err(invalid)?),
            DatumType::Bool => Numbers::Bool(copy(tensor).map_err(invalid)?),
            DatumType::String => Numbers::Text(tensor.try_as_plain_ram().map_err(invalid)?.as_slice::<String>().map_err(invalid)?.to_vec()),
            _ => Numbers::I64(copy(&*tensor.cast_to::<i64>().map_err(invalid)?).map_err(invalid)?),
        })
    }

    fn len(&self) -> usize {
        match self {
            Numbers::F32(v) => v.len(),
            Numbers::F64(v) => v.len(),
            Numbers::I64(v) => v.len(),
            Numbers::Bool(v) => v.len(),
            Numbers::Text(v) => v.len(),
        }
    }

    fn get_f64(&self, index: usize) -> f64 {
        match self {
            Numbers::F32(v) => v[index] as f64,
            Numbers::F64(v) => v[index],
            Numbers::I64(v) => v[index] as f64,
            Numbers::Bool(v) => f64::from(u8::from(v[index])),
            // Only probability outputs are read as numbers, and those are never text.
            Numbers::Text(_) => f64::NAN,
        }
    }

    /// Appends value `index` as text.
    fn write(&self, index: usize, text: &mut Vec<u8>) {
        let mut buffer = ryu::Buffer::new();
        match self {
            Numbers::F32(v) => text.extend_from_slice(buffer.format(v[index]).as_bytes()),
            Numbers::F64(v) => text.extend_from_slice(buffer.format(v[index]).as_bytes()),
            Numbers::I64(v) => text.extend_from_slice(v[index].to_string().as_bytes()),
            Numbers::Bool(v) => text.extend_from_slice(if v[index] { b"true" } else { b"false" }),
            Numbers::Text(v) => text.extend_from_slice(v[index].as_bytes()),
        }
    }
}

/// Formats scored rows for one output file.
pub enum RowWriter {
    Csv(CsvWriter),
    Jsonl(JsonlWriter),
}

impl RowWriter {
    /// Creates a CSV writer when `csv_header` is given, else a JSON Lines
    /// writer.
    pub fn new(csv_header: Option<csv::ByteRecord>, manifest: Arc<Manifest>, outputs: Vec<TensorSpec>) -> Self {
        match csv_header {
            Some(header) => RowWriter::Csv(CsvWriter {
                input_header: header,
                header_written: false,
                manifest,
                outputs,
            }),
            None => RowWriter::Jsonl(JsonlWriter { manifest, outputs }),
        }
    }

    /// Formats `rows` with the model outputs of their mini-batch and returns
    /// the bytes. Fails when an output does not have one entry per row.
    pub fn write(&mut self, rows: Vec<PassThrough>, outputs: &[Tensor]) -> shared::Result<Vec<u8>> {
        match self {
            RowWriter::Csv(writer) => writer.write(rows, outputs),
            RowWriter::Jsonl(writer) => writer.write(rows, outputs),
        }
    }

    /// Returns what the output still needs when it is complete: the CSV
    /// header, when no row was scored.
    pub fn finish(&mut self) -> Vec<u8> {
        match self {
            RowWriter::Csv(writer) if !writer.header_written => {
                let widths: Vec<usize> = writer
                    .outputs
                    .iter()
                    .map(|spec| spec.shape.iter().skip(1).map(|&d| d.max(1) as usize).product())
                    .collect();
                let mut text = csv::Writer::from_writer(Vec::new());
                writer.write_header(&mut text, &widths);
                into_bytes(text)
            }
            _ => Vec::new(),
        }
    }
}

pub struct CsvWriter {
    input_header: csv::ByteRecord,
    header_written: bool,
    manifest: Arc<Manifest>,
    outputs: Vec<TensorSpec>,
}

impl CsvWriter {
    fn classifier(&self) -> Option<usize> {
        self.manifest.labels.as_ref().and(probability_output(&self.manifest, &self.outputs))
    }

    /// Names of the prediction columns, given each output's values per row.
    fn prediction_columns(&self, widths: &[usize]) -> Vec<String> {
        if let (Some(_), Some(labels)) = (self.classifier(), &self.manifest.labels) {
            let mut names = vec!["label".to_string()];
            names.extend(labels.iter().map(|label| format!("probability_{label}")));
            return names;
        }
        let mut names = Vec::new();
        for (spec, &width) in self.outputs.iter().zip(widths) {
            if width == 1 {
                names.push(spec.name.clone());
            } else {
                names.extend((0..width).map(|i| format!("{}_{i}", spec.name)));
            }
        }
        names
    }

    fn write_header(&mut self, text: &mut csv::Writer<Vec<u8>>, widths: &[usize]) {
        let taken: Vec<&[u8]> = self.input_header.iter().collect();
        let names: Vec<String> = self
            .prediction_columns(widths)
            .into_iter()
            .map(|name| if taken.contains(&name.as_bytes()) { format!("predicted_{name}") } else { name })
            .collect();
        let mut header = self.input_header.clone();
        for name in &names {
            header.push_field(name.as_bytes());
        }
        // The target is a Vec, whose writes cannot fail, and every row has
        // as many fields as this header.
        let _ = text.write_byte_record(&header);
        self.header_written = true;
    }

    fn write(&mut self, rows: Vec<PassThrough>, outputs: &[Tensor]) -> shared::Result<Vec<u8>> {
        let count = rows.len();
        let mut columns = Vec::with_capacity(outputs.len());
        for (spec, tensor) in self.outputs.iter().zip(outputs) {
            let numbers = Numbers::from_tensor(spec, tensor)?;
            columns.push((numbers.len() / count.max(1), numbers));
            check_rows(spec, tensor, count)?;
        }
        let mut out = csv::Writer::from_writer(Vec::with_capacity(count * 128));
        if !self.header_written {
            let widths: Vec<usize> = columns.iter().map(|(width, _)| *width).collect();
            self.write_header(&mut out, &widths);
        }
        let classifier = self.classifier();
        let labels = self.manifest.labels.clone().unwrap_or_default();
        let mut text = Vec::with_capacity(32);
        let mut probabilities = Vec::new();
        for (row, pass_through) in rows.into_iter().enumerate() {
            if let PassThrough::Csv(record) = pass_through {
                for field in &record {
                    let _ = out.write_field(field);
                }
            }
            match classifier {
                Some(index) => {
                    let (width, numbers) = &columns[index];
                    probabilities.clear();
                    probabilities.extend((0..*width).map(|j| numbers.get_f64(row * width + j)));
                    let label = labels.get(best_class(&probabilities)).map(|l| l.to_string()).unwrap_or_default();
                    let _ = out.write_field(label.as_bytes());
                    for j in 0..*width {
                        text.clear();
                        numbers.write(row * width + j, &mut text);
                        let _ = out.write_field(&text);
                    }
                }
                None => {
                    for (width, numbers) in &columns {
                        for j in 0..*width {
                            text.clear();
                            numbers.write(row * width + j, &mut text);
                            let _ = out.write_field(&text);
                        }
                    }
                }
            }
            let _ = out.write_record(None::<&[u8]>);
        }
        Ok(into_bytes(out))
    }
}

fn into_bytes(writer: csv::Writer<Vec<u8>>) -> Vec<u8> {
    // The target is a Vec, whose writes and flushes cannot fail.
    writer.into_inner().unwrap_or_default()
}

/// Fails unless `tensor` has one entry per row.
fn check_rows(spec: &TensorSpec, tensor: &Tensor, rows: usize) -> shared::Result<()> {
    if tensor.shape().first() == Some(&rows) {
        return Ok(());
    }
    Err(Error::Inference {
        model: String::new(),
        reason: format!("output `{}` has shape {:?}, which does not have one entry per row ({rows})", spec.name, tensor.shape()),
    })
}

pub struct JsonlWriter {
    manifest: Arc<Manifest>,
    outputs: Vec<TensorSpec>,
}

impl JsonlWriter {
    fn write(&mut self, rows: Vec<PassThrough>, outputs: &[Tensor]) -> shared::Result<Vec<u8>> {
        let predictions = predictions(&self.manifest, &self.outputs, outputs, rows.len())?;
        let mut text = Vec::with_capacity(rows.len() * 64);
        for (pass_through, prediction) in rows.into_iter().zip(predictions) {
            let mut fields = match pass_through {
                PassThrough::Json(fields) => fields,
                PassThrough::Csv(_) => serde_json::Map::new(),
            };
            fields.insert("prediction".into(), prediction);
            let _ = serde_json::to_writer(&mut text, &fields);
            text.push(b'\n');
        }
        Ok(text)
    }
}

/// Formats row errors as JSON Lines.
pub fn error_lines(errors: &[RowError]) -> Vec<u8> {
    let mut text = Vec::with_capacity(errors.len() * 96);
    for error in errors {
        let _ = serde_json::to_writer(&mut text, error);
        text.push(b'\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::tract_onnx::prelude::tensor2;

    fn manifest(outputs: serde_json::Value, labels: Option<serde_json::Value>) -> Arc<Manifest> {
        let mut manifest = serde_json::json!({
            "schema_version": 1, "name": "m", "version": 1, "created_at": "2026-01-01T00:00:00Z",
            "sha256": "0000000000000000000000000000000000000000000000000000000000000000", "size_bytes": 3,
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 1]}],
            "outputs": outputs,
            "features": [{"name": "a"}]
        });
        if let Some(labels) = labels {
            manifest["labels"] = labels;
        }
        Arc::new(serde_json::from_value(manifest).unwrap())
    }

    fn csv_row(fields: &[&str]) -> PassThrough {
        PassThrough::Csv(csv::ByteRecord::from(fields.to_vec()))
    }

    #[test]
    fn wide_output_gets_numbered_columns() {
        let manifest = manifest(serde_json::json!([{"name": "y", "datatype": "FP32", "shape": [-1, 2]}]), None);
        let mut writer = RowWriter::new(Some(csv::ByteRecord::from(vec!["a"])), manifest.clone(), manifest.outputs.clone());

        let text = writer.write(vec![csv_row(&["1"]), csv_row(&["2"])], &[tensor2(&[[0.5f32, 1.0], [0.1, -2.0]])]).unwrap();

        assert_eq!(String::from_utf8(text).unwrap(), "a,y_0,y_1\n1,0.5,1.0\n2,0.1,-2.0\n");
        assert!(writer.finish().is_empty(), "the header was already written");
    }

    #[test]
    fn empty_output_still_gets_a_header() {
        let outputs = serde_json::json!([{"name": "p", "datatype": "FP32", "shape": [-1, 2]}]);
        let manifest = manifest(outputs, Some(serde_json::json!(["no", "label"])));
        let mut writer = RowWriter::new(Some(csv::ByteRecord::from(vec!["a", "label"])), manifest.clone(), manifest.outputs.clone());

        let text = writer.finish();

        assert_eq!(String::from_utf8(text).unwrap(), "a,label,predicted_label,probability_no,probability_label\n");
    }

    #[test]
    fn output_with_wrong_row_count_is_an_error() {
        let manifest = manifest(serde_json::json!([{"name": "y", "datatype": "FP32", "shape": [-1, 1]}]), None);
        let mut writer = RowWriter::new(Some(csv::ByteRecord::from(vec!["a"])), manifest.clone(), manifest.outputs.clone());

        let err = writer.write(vec![csv_row(&["1"]), csv_row(&["2"])], &[tensor2(&[[0.5f32]])]).unwrap_err();

        assert!(err.to_string().contains("does not have one entry per row (2)"), "{err}");
    }
}
