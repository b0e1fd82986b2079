//! Tabular use of a model: rows given as arrays of numbers or as objects of
//! named features become the model's input tensor, and its outputs become one
//! prediction per row, with labels and class probabilities for classifiers.

use serde_json::{Map, Value};
use tract_onnx::prelude::Tensor;

use crate::error::{Error, Result};
use crate::manifest::{Feature, Manifest, TensorSpec};
use crate::tensor::{self, DataType, Values};

/// The single input a tabular request fills, with the number of elements one
/// row holds.
#[derive(Debug, Clone)]
pub struct RowLayout<'a> {
    pub input: &'a TensorSpec,
    pub row_shape: Vec<usize>,
    pub row_len: usize,
    pub features: Option<&'a [Feature]>,
}

impl<'a> RowLayout<'a> {
    /// Describes how rows map onto the model's input. Fails when the model has
    /// several inputs or a dynamic dimension other than the batch dimension,
    /// which only the Open Inference Protocol can express.
    pub fn new(manifest: &'a Manifest, inputs: &'a [TensorSpec]) -> Result<Self> {
        let [input] = inputs else {
            return Err(Error::invalid_input(format!(
                "model `{}` takes {} inputs; send them with the Open Inference Protocol (POST /v2/models/{}/infer)",
                manifest.name,
                inputs.len(),
                manifest.name
            )));
        };
        let row_dims = input.shape.get(1..).unwrap_or_default();
        if input.shape.is_empty() || row_dims.iter().any(|&d| d < 0) {
            return Err(Error::invalid_input(format!(
                "input `{}` has shape {:?}; rows need a batch dimension first and fixed sizes after it, \
                 so use the Open Inference Protocol for this model",
                input.name, input.shape
            )));
        }
        let row_shape: Vec<usize> = row_dims.iter().map(|&d| d as usize).collect();
        Ok(RowLayout {
            input,
            row_len: row_shape.iter().product(),
            row_shape,
            features: manifest.features.as_deref(),
        })
    }

    /// Appends one row given as JSON: an array (nested or flat) of numbers, or
    /// an object of named features in any order. `row` numbers the row in
    /// messages, starting at 0.
    pub fn push_json_row(&self, values: &mut Values, row: usize, instance: &Value) -> Result<()> {
        let before = values.len();
        match instance {
            Value::Object(object) => self.push_named(values, row, object)?,
            Value::Array(_) => values
                .push_json(instance)
                .map_err(|reason| Error::invalid_input(format!("instance {row}: {reason}")))?,
            other => {
                return Err(Error::invalid_input(format!(
                    "instance {row} is {other}; send an array of {} numbers or an object of named features",
                    self.row_len
                )))
            }
        }
        let pushed = values.len() - before;
        if pushed != self.row_len {
            values.truncate(before);
            return Err(Error::invalid_input(format!(
                "instance {row} has {pushed} values but input `{}` takes {} per row (shape {:?})",
                self.input.name, self.row_len, self.input.shape
            )));
        }
        Ok(())
    }

    fn push_named(&self, values: &mut Values, row: usize, object: &Map<String, Value>) -> Result<()> {
        let Some(features) = self.features else {
            return Err(Error::invalid_input(format!(
                "instance {row} names its features, but the model's manifest lists no feature names; send an array of {} numbers",
                self.row_len
            )));
        };
        if let Some(unknown) = object.keys().find(|key| !features.iter().any(|f| &f.name == *key)) {
            return Err(Error::invalid_input(format!(
                "instance {row} has unknown feature `{unknown}`; expected features: {}",
                feature_list(features)
            )));
        }
        for feature in features {
            let value = object.get(&feature.name).ok_or_else(|| {
                Error::invalid_input(format!("instance {row} is missing feature `{}`", feature.name))
            })?;
            let number = value.as_f64().filter(|_| value.is_number()).ok_or_else(|| {
                Error::invalid_input(format!("instance {row}: feature `{}` is {value}, not a number", feature.name))
            })?;
            if !values.push_f64(number) {
                return Err(Error::invalid_input(format!(
                    "instance {row}: feature `{}` is {number}, which does not fit input type {}",
                    feature.name,
                    values.datatype()
                )));
            }
        }
        Ok(())
    }

    /// Builds the input tensor from rows that [`Self::push_json_row`] filled.
    pub fn tensor(&self, values: Values) -> Result<Tensor> {
        let rows = values.len() / self.row_len.max(1);
        let mut shape = vec![rows];
        shape.extend(&self.row_shape);
        values.into_tensor(&shape)
    }

    pub fn new_values(&self, rows: usize) -> Result<Values> {
        Values::with_capacity(self.input.datatype, rows.saturating_mul(self.row_len))
    }
}

pub fn feature_list(features: &[Feature]) -> String {
    features.iter().map(|f| format!("`{}`", f.name)).collect::<Vec<_>>().join(", ")
}

/// Index of the output holding class probabilities, when the manifest has
/// labels: the one it names, or else the first floating point output with one
/// column per label.
pub fn probability_output(manifest: &Manifest, outputs: &[TensorSpec]) -> Option<usize> {
    let labels = manifest.labels.as_ref()?;
    if let Some(name) = &manifest.probability_output {
        return outputs.iter().position(|o| &o.name == name);
    }
    outputs.iter().position(|o| {
        matches!(o.datatype, DataType::Fp16 | DataType::Fp32 | DataType::Fp64)
            && o.shape.len() == 2
            && o.shape[1] == labels.len() as i64
    })
}

/// Splits a tensor's values into `rows` equal rows.
fn split_rows(name: &str, tensor: &Tensor, rows: usize) -> Result<Vec<Vec<f64>>> {
    let values = tensor::to_f64(tensor)?;
    if tensor.shape().first() != Some(&rows) || (rows == 0 && !values.is_empty()) {
        return Err(Error::Inference {
            model: String::new(),
            reason: format!("output `{name}` has shape {:?}, which does not have one entry per row ({rows})", tensor.shape()),
        });
    }
    let width = values.len() / rows.max(1);
    Ok(values.chunks(width.max(1)).map(<[f64]>::to_vec).collect())
}

fn row_value(row: Vec<f64>) -> Value {
    if row.len() == 1 {
        Value::from(row[0])
    } else {
        Value::from(row)
    }
}

/// Turns model outputs into one JSON prediction per row.
///
/// A classifier gives `{"label", "probabilities": {label: p}}`, with the label
/// of the highest probability. A single output gives a number or an array per
/// row, and several outputs give an object keyed by output name.
pub fn predictions(manifest: &Manifest, specs: &[TensorSpec], outputs: &[Tensor], rows: usize) -> Result<Vec<Value>> {
    if let (Some(index), Some(labels)) = (probability_output(manifest, specs), manifest.labels.as_ref()) {
        let probabilities = split_rows(&specs[index].name, &outputs[index], rows)?;
        return Ok(probabilities
            .into_iter()
            .map(|row| {
                let best = row
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map(|(i, _)| i)
                    .unwrap_or(0);
                let by_label: Map<String, Value> =
                    labels.iter().zip(&row).map(|(label, p)| (label.to_string(), Value::from(*p))).collect();
                serde_json::json!({"label": labels[best], "probabilities": by_label})
            })
            .collect());
    }
    let mut columns = Vec::with_capacity(outputs.len());
    for (spec, tensor) in specs.iter().zip(outputs) {
        columns.push(split_rows(&spec.name, tensor, rows)?);
    }
    if let [single] = &mut columns[..] {
        return Ok(std::mem::take(single).into_iter().map(row_value).collect());
    }
    Ok((0..rows)
        .map(|row| {
            let object: Map<String, Value> = specs
                .iter()
                .zip(&mut columns)
                .map(|(spec, column)| (spec.name.clone(), row_value(std::mem::take(&mut column[row]))))
                .collect();
            Value::Object(object)
        })
        .collect())
}
