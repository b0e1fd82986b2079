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
    /// messages, starting at 0. On error nothing of the row is kept.
    pub fn push_json_row(&self, values: &mut Values, row: usize, instance: &Value) -> Result<()> {
        let before = values.len();
        let result = self.push_json_row_unchecked(values, row, instance);
        if result.is_err() {
            values.truncate(before);
        }
        result
    }

    fn push_json_row_unchecked(&self, values: &mut Values, row: usize, instance: &Value) -> Result<()> {
        let before = values.len();
        match instance {
            Value::Object(object) => self.push_named(values, row, object)?,
            Value::Array(_) => self.push_json_array(values, instance).map_err(|err| match err {
                RowArrayError::Invalid(reason) => Error::invalid_input(format!("instance {row}: {reason}")),
                RowArrayError::Count(pushed) => self.count_error(&format!("instance {row}"), pushed),
            })?,
            other => {
                return Err(Error::invalid_input(format!(
                    "instance {row} is {other}; send an array of {} numbers or an object of named features",
                    self.row_len
                )))
            }
        }
        let pushed = values.len() - before;
        if pushed != self.row_len {
            return Err(self.count_error(&format!("instance {row}"), pushed));
        }
        Ok(())
    }

    /// Appends one row given as a JSON array, flat or nested as the row
    /// shape. On error nothing of the row is kept.
    pub fn push_json_array(&self, values: &mut Values, array: &Value) -> std::result::Result<(), RowArrayError> {
        check_nesting(array, &self.row_shape, &mut Vec::new()).map_err(RowArrayError::Invalid)?;
        let before = values.len();
        let result = match values.push_json(array) {
            Err(reason) => Err(RowArrayError::Invalid(reason)),
            Ok(()) if values.len() - before != self.row_len => Err(RowArrayError::Count(values.len() - before)),
            Ok(()) => Ok(()),
        };
        if result.is_err() {
            values.truncate(before);
        }
        result
    }

    /// Builds the message for a row of `pushed` values, named `what`.
    pub fn count_error(&self, what: &str, pushed: usize) -> Error {
        Error::invalid_input(format!(
            "{what} has {pushed} values but input `{}` takes {} per row (shape {:?})",
            self.input.name, self.row_len, self.input.shape
        ))
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

    /// Finds each feature's column in a table header, matching names exactly
    /// and in any order. Returns the column indices in feature order, or a
    /// message that names the missing or repeated features.
    pub fn feature_columns<'h>(&self, header: impl IntoIterator<Item = &'h str>) -> std::result::Result<Vec<usize>, String> {
        let Some(features) = self.features else {
            return Err(format!(
                "the manifest of model input `{}` lists no feature names, so table columns cannot be matched to it; \
                 register the model with `features`, or send JSON Lines rows as `{{\"inputs\": [...]}}`",
                self.input.name
            ));
        };
        let header: Vec<&str> = header.into_iter().collect();
        let mut columns = Vec::with_capacity(features.len());
        let mut missing = Vec::new();
        for feature in features {
            let mut found = header.iter().enumerate().filter(|(_, name)| **name == feature.name).map(|(i, _)| i);
            match (found.next(), found.next()) {
                (Some(index), None) => columns.push(index),
                (Some(_), Some(_)) => return Err(format!("the header has column `{}` more than once", feature.name)),
                (None, _) => missing.push(feature.clone()),
            }
        }
        if !missing.is_empty() {
            return Err(format!(
                "the header has no column for feature {}; the model needs columns {}",
                feature_list(&missing),
                feature_list(features)
            ));
        }
        Ok(columns)
    }

    /// Appends one row given as text fields in feature order, such as CSV
    /// cells picked by [`Self::feature_columns`]. Surrounding spaces are
    /// ignored. On failure nothing is appended, and the error names the
    /// feature.
    pub fn push_text_fields<'t>(
        &self,
        values: &mut Values,
        fields: impl IntoIterator<Item = &'t [u8]>,
    ) -> std::result::Result<(), FieldError> {
        let before = values.len();
        let result = self.push_text_fields_unchecked(values, fields);
        if result.is_err() {
            values.truncate(before);
        }
        result
    }

    fn push_text_fields_unchecked<'t>(
        &self,
        values: &mut Values,
        fields: impl IntoIterator<Item = &'t [u8]>,
    ) -> std::result::Result<(), FieldError> {
        for (index, field) in fields.into_iter().enumerate() {
            let column = self.column_name(index);
            let text = std::str::from_utf8(field).map(str::trim).map_err(|_| FieldError {
                column: column.clone(),
                reason: "the value is not valid UTF-8".into(),
            })?;
            if text.is_empty() {
                return Err(FieldError { column, reason: "the value is missing".into() });
            }
            let number: f64 = match text.parse() {
                Ok(number) => number,
                Err(_) => return Err(FieldError { column, reason: format!("`{text}` is not a number") }),
            };
            self.push_number(values, column, number)?;
        }
        Ok(())
    }

    /// Appends the named features of a JSON object in feature order, ignoring
    /// other keys, which callers pass through. On failure nothing is
    /// appended, and the error names the feature.
    pub fn push_object_features(&self, values: &mut Values, object: &Map<String, Value>) -> std::result::Result<(), FieldError> {
        let Some(features) = self.features else {
            return Err(FieldError {
                column: self.input.name.clone(),
                reason: format!(
                    "the model's manifest lists no feature names; send the row as {{\"inputs\": [{} numbers]}}",
                    self.row_len
                ),
            });
        };
        let before = values.len();
        for feature in features {
            let column = feature.name.clone();
            let result = match object.get(&feature.name) {
                None | Some(Value::Null) => Err(FieldError { column, reason: "the value is missing".into() }),
                Some(Value::Number(number)) => match number.as_f64() {
                    Some(number) => self.push_number(values, column, number),
                    None => Err(FieldError { column, reason: format!("{number} is not a number this service can read") }),
                },
                Some(other) => Err(FieldError { column, reason: format!("{other} is not a number") }),
            };
            if let Err(err) = result {
                values.truncate(before);
                return Err(err);
            }
        }
        Ok(())
    }

    fn push_number(&self, values: &mut Values, column: String, number: f64) -> std::result::Result<(), FieldError> {
        if !number.is_finite() {
            return Err(FieldError { column, reason: format!("{number} is not a finite number") });
        }
        if !values.push_f64(number) {
            let reason = format!("{number} does not fit input type {}", values.datatype());
            return Err(FieldError { column, reason });
        }
        Ok(())
    }

    /// Name of the `index`th value of a row: the feature name when the
    /// manifest has them, else the input name with the index.
    fn column_name(&self, index: usize) -> String {
        match self.features.and_then(|features| features.get(index)) {
            Some(feature) => feature.name.clone(),
            None => format!("{}[{index}]", self.input.name),
        }
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

/// A value of one row that could not be used, with the column (feature)
/// it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub column: String,
    pub reason: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "column `{}`: {}", self.column, self.reason)
    }
}

pub fn feature_list(features: &[Feature]) -> String {
    features.iter().map(|f| format!("`{}`", f.name)).collect::<Vec<_>>().join(", ")
}

/// Reason a JSON array could not be read as one row.
#[derive(Debug)]
pub enum RowArrayError {
    /// An invalid value or nesting, with a message that names it.
    Invalid(String),
    /// The array has this many values, not one row's worth.
    Count(usize),
}

/// Checks that a row given as a JSON array is flat, or nested exactly as
/// `shape`, so that ragged rows are not silently read in the wrong order.
fn check_nesting(value: &Value, shape: &[usize], path: &mut Vec<usize>) -> std::result::Result<(), String> {
    let Value::Array(items) = value else { return Ok(()) };
    let place = |path: &[usize]| path.iter().map(|i| format!("[{i}]")).collect::<String>();
    if path.is_empty() && items.iter().all(|item| !item.is_array()) {
        return Ok(());
    }
    let depth = path.len();
    match shape.get(depth) {
        None => Err(format!("element {} is an array where a number is expected", place(path))),
        Some(&length) if items.len() != length => Err(format!(
            "array {} has {} elements but the row shape {shape:?} needs {length} there; send a flat array or arrays nested as that shape",
            if path.is_empty() { "at the top".to_string() } else { place(path) },
            items.len()
        )),
        Some(_) => {
            for (index, item) in items.iter().enumerate() {
                path.push(index);
                let last_level = depth + 1 == shape.len();
                if item.is_array() || !last_level {
                    if !item.is_array() {
                        return Err(format!("element {} is a number where an array is expected", place(path)));
                    }
                    check_nesting(item, shape, path)?;
                }
                path.pop();
            }
            Ok(())
        }
    }
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

/// Index of the highest probability in one row, the predicted class; 0 for
/// an empty row.
pub fn best_class(probabilities: &[f64]) -> usize {
    probabilities.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap_or(0)
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
                let best = best_class(&row);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        serde_json::from_value(serde_json::json!({
            "schema_version": 1, "name": "m", "version": 1, "created_at": "2026-01-01T00:00:00Z",
            "sha256": "0000000000000000000000000000000000000000000000000000000000000000", "size_bytes": 3,
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}],
            "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 1]}],
            "features": [{"name": "a"}, {"name": "b"}]
        }))
        .unwrap()
    }

    #[test]
    fn feature_columns_match_by_name_in_any_order() {
        let manifest = manifest();
        let layout = RowLayout::new(&manifest, &manifest.inputs).unwrap();
        assert_eq!(layout.feature_columns(["id", "b", "a"]).unwrap(), vec![2, 1]);
        let missing = layout.feature_columns(["a", "c"]).unwrap_err();
        assert!(missing.contains("no column for feature `b`"), "{missing}");
        let repeated = layout.feature_columns(["a", "b", "a"]).unwrap_err();
        assert!(repeated.contains("column `a` more than once"), "{repeated}");
    }

    #[test]
    fn ragged_array_rows_are_rejected() {
        let manifest = manifest();
        let layout = RowLayout::new(&manifest, &manifest.inputs).unwrap();
        let mut values = layout.new_values(2).unwrap();
        layout.push_json_row(&mut values, 0, &serde_json::json!([1, 2])).unwrap();
        assert_eq!(values, Values::F32(vec![1.0, 2.0]));

        let cases = [
            (serde_json::json!([[1], [2]]), "element [0] is an array where a number is expected"),
            (serde_json::json!([[1, 2]]), "array at the top has 1 elements but the row shape [2] needs 2 there"),
            (serde_json::json!([1, [2]]), "element [1] is an array where a number is expected"),
            (serde_json::json!([1, "2"]), "\"2\" is not a number"),
            (serde_json::json!({"a": 1}), "missing feature `b`"),
        ];
        for (row, reason) in cases {
            let err = layout.push_json_row(&mut values, 3, &row).unwrap_err().to_string();
            assert!(err.contains("instance 3"), "{err}");
            assert!(err.contains(reason), "{row}: {err}");
        }
        assert_eq!(values.len(), 2);
    }

    #[test]
    fn text_fields_parse_or_name_the_column() {
        let manifest = manifest();
        let layout = RowLayout::new(&manifest, &manifest.inputs).unwrap();
        let mut values = layout.new_values(2).unwrap();
        layout.push_text_fields(&mut values, [&b" 1.5 "[..], b"2"]).unwrap();
        assert_eq!(values, Values::F32(vec![1.5, 2.0]));

        let cases: [(&[&[u8]], &str, &str); 4] = [
            (&[b"1", b""], "b", "the value is missing"),
            (&[b"x1", b"2"], "a", "`x1` is not a number"),
            (&[b"NaN", b"2"], "a", "NaN is not a finite number"),
            (&[b"1", b"1e60"], "b", "does not fit input type FP32"),
        ];
        for (fields, column, reason) in cases {
            let err = layout.push_text_fields(&mut values, fields.iter().copied()).unwrap_err();
            assert_eq!(err.column, column);
            assert!(err.reason.contains(reason), "{err}");
            assert_eq!(values.len(), 2, "a bad row leaves no values behind");
        }
    }

    #[test]
    fn object_features_ignore_other_keys() {
        let manifest = manifest();
        let layout = RowLayout::new(&manifest, &manifest.inputs).unwrap();
        let mut values = layout.new_values(1).unwrap();
        let row = serde_json::json!({"b": 2, "a": 1, "id": "r1"});
        layout.push_object_features(&mut values, row.as_object().unwrap()).unwrap();
        assert_eq!(values, Values::F32(vec![1.0, 2.0]));

        let bad = serde_json::json!({"a": "one", "b": 2});
        let err = layout.push_object_features(&mut values, bad.as_object().unwrap()).unwrap_err();
        assert_eq!((err.column.as_str(), err.reason.as_str()), ("a", "\"one\" is not a number"));
        assert_eq!(values.len(), 2);
    }

    #[test]
    fn best_class_is_highest_probability() {
        assert_eq!(best_class(&[0.1, 0.7, 0.2]), 1);
        assert_eq!(best_class(&[]), 0);
    }
}
