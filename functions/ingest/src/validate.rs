//! Validation of an uploaded model before anything is registered: the file is
//! checked, rewritten into its servable form, loaded with the shared runtime,
//! run at two batch sizes, and compared with the sidecar's samples. Each
//! failure is a [`Rejection`] whose message names what to change.

use std::collections::BTreeMap;
use std::time::Instant;

use prost::Message;
use serde_json::Value;
use shared::manifest::{ClassLabel, Feature, Producer, TensorSpec, Tolerance, Validation};
use shared::registry::ModelName;
use shared::runtime::ml::{self, Prepared};
use shared::runtime::{self as runtime, LoadedModel};
use shared::tensor::{self, DataType, Values};
use shared::tract_onnx::pb;
use shared::tract_onnx::prelude::{Framework, Tensor};

use crate::sidecar::Sidecar;

/// tract-onnx 0.23.9 is tested against operator sets 9 to 18.
pub const NEWEST_TESTED_OPSET: i64 = 18;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error("the model file is {size} bytes, above the limit of {limit} bytes; export a smaller model or raise MAX_MODEL_MB")]
    TooLarge { size: u64, limit: u64 },

    #[error("the file is not an ONNX model: {0}; upload the .onnx file your exporter wrote")]
    NotOnnx(String),

    #[error("{0}")]
    ExternalData(String),

    #[error("the ONNX graph has no nodes; export the fitted model, not an empty graph")]
    EmptyGraph,

    #[error("{0}")]
    UnsupportedType(String),

    #[error("{0}")]
    UnsupportedOperator(String),

    #[error("{0}")]
    InvalidSidecar(String),

    /// The model name, from the uploaded file's name or from `--name`.
    #[error("{0}")]
    InvalidName(String),

    #[error("tract could not load the model: {0}")]
    LoadFailed(String),

    #[error("the smoke inference with batch size {batch} failed: {reason}")]
    SmokeFailed { batch: usize, reason: String },

    #[error("{0}")]
    SampleMismatch(String),
}

impl Rejection {
    /// Returns a stable identifier for reports and tests.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::TooLarge { .. } => "too_large",
            Rejection::NotOnnx(_) => "not_onnx",
            Rejection::ExternalData(_) => "external_data",
            Rejection::EmptyGraph => "empty_graph",
            Rejection::UnsupportedType(_) => "unsupported_type",
            Rejection::UnsupportedOperator(_) => "unsupported_operator",
            Rejection::InvalidSidecar(_) => "invalid_sidecar",
            Rejection::InvalidName(_) => "invalid_name",
            Rejection::LoadFailed(_) => "load_failed",
            Rejection::SmokeFailed { .. } => "smoke_failed",
            Rejection::SampleMismatch(_) => "sample_mismatch",
        }
    }
}

/// Result of a successful validation: the servable file and everything the
/// manifest needs from it.
#[derive(Debug, Clone)]
pub struct Validated {
    /// The bytes to register as `model.onnx`.
    pub servable: Vec<u8>,
    /// True when `servable` differs from the upload, which is then kept too.
    pub rewritten: bool,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    pub features: Option<Vec<Feature>>,
    pub labels: Option<Vec<ClassLabel>>,
    pub probability_output: Option<String>,
    pub opset_imports: BTreeMap<String, i64>,
    pub producer: Option<Producer>,
    pub warnings: Vec<String>,
    pub validation: Validation,
}

const CARRIED_INPUTS: &[DataType] = &[
    DataType::Bool,
    DataType::Uint8,
    DataType::Uint16,
    DataType::Uint32,
    DataType::Uint64,
    DataType::Int8,
    DataType::Int16,
    DataType::Int32,
    DataType::Int64,
    DataType::Fp16,
    DataType::Fp32,
    DataType::Fp64,
];

/// Maps an ONNX element type to a protocol datatype, or names it when the
/// service cannot carry it.
fn onnx_datatype(elem_type: i32) -> Result<DataType, String> {
    use pb::tensor_proto::DataType as Onnx;
    let onnx = Onnx::try_from(elem_type).map_err(|_| format!("element type {elem_type}"))?;
    Ok(match onnx {
        Onnx::Bool => DataType::Bool,
        Onnx::Uint8 => DataType::Uint8,
        Onnx::Uint16 => DataType::Uint16,
        Onnx::Uint32 => DataType::Uint32,
        Onnx::Uint64 => DataType::Uint64,
        Onnx::Int8 => DataType::Int8,
        Onnx::Int16 => DataType::Int16,
        Onnx::Int32 => DataType::Int32,
        Onnx::Int64 => DataType::Int64,
        Onnx::Float16 => DataType::Fp16,
        Onnx::Float => DataType::Fp32,
        Onnx::Double => DataType::Fp64,
        Onnx::String => DataType::Bytes,
        other => return Err(format!("element type {other:?}")),
    })
}

/// Checks that every graph input and output is a tensor the service can
/// carry: numeric or BOOL, and for outputs also strings (class labels).
fn check_signature(graph: &pb::GraphProto) -> Result<(), Rejection> {
    let initializers: Vec<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs = graph.input.iter().filter(|i| !initializers.contains(&i.name.as_str()));
    for (kind, value, strings_allowed) in
        inputs.map(|v| ("input", v, false)).chain(graph.output.iter().map(|v| ("output", v, true)))
    {
        let tensor = match value.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(pb::type_proto::Value::TensorType(tensor)) => tensor,
            None => {
                return Err(Rejection::UnsupportedType(format!(
                    "{kind} `{}` is not a tensor (it is a sequence, map or optional value), which the service cannot carry; \
                     export plain tensors, for example with options={{'zipmap': False}} for scikit-learn classifiers",
                    value.name
                )))
            }
        };
        let datatype = onnx_datatype(tensor.elem_type).map_err(|what| {
            Rejection::UnsupportedType(format!("{kind} `{}` has {what}, which the service cannot carry", value.name))
        })?;
        if !(CARRIED_INPUTS.contains(&datatype) || (strings_allowed && datatype == DataType::Bytes)) {
            return Err(Rejection::UnsupportedType(format!(
                "{kind} `{}` has element type STRING; this service takes numeric tensors only, so encode categories \
                 as numbers before export",
                value.name
            )));
        }
    }
    Ok(())
}

/// Rejects outputs that are sequences, maps or optional values, except
/// ZipMap's, which the rewrite turns into a tensor. Runs before the operator
/// check so that the message names the output rather than an operator.
fn check_output_kinds(graph: &pb::GraphProto) -> Result<(), Rejection> {
    let zipmap_outputs: Vec<&str> =
        graph.node.iter().filter(|n| n.op_type == "ZipMap").flat_map(|n| n.output.iter().map(String::as_str)).collect();
    for output in &graph.output {
        let is_tensor = matches!(output.r#type.as_ref().and_then(|t| t.value.as_ref()), Some(pb::type_proto::Value::TensorType(_)));
        if !is_tensor && !zipmap_outputs.contains(&output.name.as_str()) {
            return Err(Rejection::UnsupportedType(format!(
                "output `{}` is not a tensor (it is a sequence, map or optional value), which the service cannot carry; \
                 export plain tensors, for example with options={{'zipmap': False}} for scikit-learn classifiers",
                output.name
            )));
        }
    }
    Ok(())
}

/// Checks that sidecar labels match the output that gives one probability
/// per class, so a wrong list is not silently ignored or misaligned.
fn check_label_count(outputs: &[TensorSpec], count: usize, probability_output: Option<&str>) -> Result<(), Rejection> {
    let describe = || outputs.iter().map(|o| format!("`{}` {:?}", o.name, o.shape)).collect::<Vec<_>>().join(", ");
    let floating = |o: &TensorSpec| matches!(o.datatype, DataType::Fp16 | DataType::Fp32 | DataType::Fp64);
    let tables: Vec<&TensorSpec> = outputs.iter().filter(|o| floating(o) && o.shape.len() == 2).collect();
    // The named output, else one with a column per label, else the only
    // floating point table with several columns, whose width then goes into
    // the message. A one-column table is a regressor's output.
    let candidate = match probability_output {
        Some(name) => outputs.iter().find(|o| o.name == name),
        None => tables.iter().find(|o| o.shape[1] == count as i64).or(tables.first().filter(|o| tables.len() == 1 && o.shape[1] != 1)).copied(),
    };
    match candidate {
        Some(output) => match output.shape.get(1) {
            Some(&columns) if columns >= 0 && columns as usize != count => Err(Rejection::InvalidSidecar(format!(
                "`labels` has {count} classes but the probability output `{}` has {columns} columns; list one label per column",
                output.name
            ))),
            _ => Ok(()),
        },
        None => Err(Rejection::InvalidSidecar(format!(
            "`labels` has {count} classes but no output gives {count} class probabilities (outputs: {}); \
             remove `labels` for a regressor, list one label per probability column, or name that output in `probability_output`",
            describe()
        ))),
    }
}

/// Class labels declared by a classifier node of the model, if any.
fn declared_labels(graph: &pb::GraphProto) -> Option<Vec<ClassLabel>> {
    graph.node.iter().find_map(|node| {
        if !matches!(node.op_type.as_str(), "TreeEnsembleClassifier" | "LinearClassifier" | "SVMClassifier") {
            return None;
        }
        let attrs = ml::attrs::Attrs::new(node);
        let ints = attrs.ints("classlabels_ints");
        let ints = if ints.is_empty() { attrs.ints("classlabels_int64s") } else { ints };
        let strings = attrs.strings("classlabels_strings");
        if !ints.is_empty() {
            Some(ints.iter().map(|&i| ClassLabel::Int(i)).collect())
        } else if !strings.is_empty() {
            Some(strings.into_iter().map(ClassLabel::Text).collect())
        } else {
            None
        }
    })
}

/// Infers the shape of a nested JSON array from its first elements.
fn nested_shape(value: &Value) -> Vec<usize> {
    let mut shape = Vec::new();
    let mut current = value;
    while let Value::Array(items) = current {
        shape.push(items.len());
        match items.first() {
            Some(first) => current = first,
            None => break,
        }
    }
    shape
}

/// Builds an input tensor for a sample. A sample written without the batch
/// dimension is taken as one row.
fn sample_tensor(spec: &TensorSpec, value: &Value) -> Result<Tensor, String> {
    let mut shape = nested_shape(value);
    if shape.len() + 1 == spec.shape.len() {
        shape.insert(0, 1);
    }
    let count: usize = shape.iter().product();
    let mut values = Values::with_capacity(spec.datatype, count).map_err(|e| e.to_string())?;
    values.push_json(value).map_err(|reason| format!("input `{}`: {reason}", spec.name))?;
    if values.len() != count {
        return Err(format!("input `{}` is a ragged array; give every row the same length", spec.name));
    }
    let tensor = values.into_tensor(&shape).map_err(|e| e.to_string())?;
    Ok(tensor)
}

/// One expected value, as a sidecar writes it.
#[derive(Debug, Clone, PartialEq)]
enum Expected {
    Number(f64),
    Text(String),
}

fn flatten_expected(value: &Value, labels: Option<&[ClassLabel]>, out: &mut Vec<Expected>) -> Result<(), String> {
    match value {
        Value::Array(items) => items.iter().try_for_each(|item| flatten_expected(item, labels, out)),
        Value::Number(n) => {
            out.push(Expected::Number(n.as_f64().unwrap_or(f64::NAN)));
            Ok(())
        }
        Value::Bool(b) => {
            out.push(Expected::Number(if *b { 1.0 } else { 0.0 }));
            Ok(())
        }
        Value::String(s) if s.eq_ignore_ascii_case("nan") => {
            out.push(Expected::Number(f64::NAN));
            Ok(())
        }
        Value::String(s) => {
            out.push(Expected::Text(s.clone()));
            Ok(())
        }
        // A ZipMap row: probabilities keyed by label.
        Value::Object(map) => {
            let labels = labels.ok_or("an expected output is an object of probabilities by label, but the model has no labels")?;
            for label in labels {
                let p = map.get(&label.to_string()).and_then(Value::as_f64).ok_or_else(|| {
                    format!("an expected probability object has no number for label `{label}`")
                })?;
                out.push(Expected::Number(p));
            }
            Ok(())
        }
        Value::Null => Err("an expected output contains null".into()),
    }
}

/// Reads a computed tensor as expected values for comparison.
fn computed_values(tensor: &Tensor) -> Result<Vec<Expected>, String> {
    if tensor.datum_type() == shared::tract_onnx::prelude::DatumType::String {
        let view = tensor.try_as_plain_ram().map_err(|e| e.to_string())?;
        let strings = view.as_slice::<String>().map_err(|e| e.to_string())?;
        return Ok(strings.iter().map(|s| Expected::Text(s.clone())).collect());
    }
    Ok(tensor::to_f64(tensor).map_err(|e| e.to_string())?.into_iter().map(Expected::Number).collect())
}

/// The comparison of one sample output, for the worst-element message.
struct Worst {
    index: usize,
    expected: String,
    computed: String,
    excess: f64,
}

fn compare(expected: &[Expected], computed: &[Expected], tolerance: Tolerance, max_abs: &mut f64) -> Result<(), Worst> {
    let mut worst: Option<Worst> = None;
    for (index, (want, got)) in expected.iter().zip(computed).enumerate() {
        let excess = match (want, got) {
            (Expected::Number(w), Expected::Number(g)) if w.is_nan() || g.is_nan() => {
                if w.is_nan() && g.is_nan() {
                    continue;
                }
                f64::INFINITY
            }
            (Expected::Number(w), Expected::Number(g)) => {
                let diff = (g - w).abs();
                *max_abs = max_abs.max(diff);
                diff - (tolerance.absolute + tolerance.relative * w.abs())
            }
            // A numeric label such as 1 may be compared with the text "1".
            (Expected::Text(w), Expected::Number(g)) | (Expected::Number(g), Expected::Text(w)) => {
                if w == &g.to_string() {
                    continue;
                }
                f64::INFINITY
            }
            (Expected::Text(w), Expected::Text(g)) => {
                if w == g {
                    continue;
                }
                f64::INFINITY
            }
        };
        if excess > 0.0 && worst.as_ref().is_none_or(|w| excess > w.excess) {
            let show = |e: &Expected| match e {
                Expected::Number(n) => format!("{n}"),
                Expected::Text(t) => format!("`{t}`"),
            };
            worst = Some(Worst { index, expected: show(want), computed: show(got), excess });
        }
    }
    worst.map_or(Ok(()), Err)
}

/// Runs the model on one batch of neutral values (0.5 for floats, 0 for
/// integers, false for BOOL) and checks the batch dimension of the outputs.
fn smoke(model: &LoadedModel, batch: usize) -> Result<(), String> {
    let mut inputs = Vec::with_capacity(model.inputs.len());
    for spec in &model.inputs {
        let shape: Vec<usize> = spec
            .shape
            .iter()
            .enumerate()
            .map(|(axis, &d)| if d >= 0 { d as usize } else if axis == 0 { batch } else { 1 })
            .collect();
        let count: usize = shape.iter().product();
        let mut values = Values::with_capacity(spec.datatype, count).map_err(|e| e.to_string())?;
        let filler = match spec.datatype {
            DataType::Bool => Value::Bool(false),
            DataType::Fp16 | DataType::Fp32 | DataType::Fp64 => Value::from(0.5),
            _ => Value::from(0),
        };
        for _ in 0..count {
            values.push_json(&filler)?;
        }
        inputs.push(values.into_tensor(&shape).map_err(|e| e.to_string())?);
    }
    let outputs = model.run(inputs).map_err(|e| e.to_string())?;
    for (spec, tensor) in model.outputs.iter().zip(&outputs) {
        if spec.shape.first() == Some(&-1) && tensor.shape().first() != Some(&batch) {
            return Err(format!("output `{}` has shape {:?} for a batch of {batch}", spec.name, tensor.shape()));
        }
    }
    Ok(())
}

fn check_samples(model: &LoadedModel, sidecar: &Sidecar, labels: Option<&[ClassLabel]>) -> Result<(usize, Option<f64>), Rejection> {
    let tolerance = sidecar.tolerance.unwrap_or_default();
    let mut max_abs = 0.0f64;
    for (number, sample) in sidecar.samples.iter().enumerate() {
        let invalid = |reason: String| Rejection::InvalidSidecar(format!("sample {number}: {reason}"));
        if let Some(unknown) = sample.inputs.keys().find(|name| !model.inputs.iter().any(|s| &s.name == *name)) {
            return Err(invalid(format!("the model has no input `{unknown}`; its inputs are {}", model.input_names())));
        }
        let mut inputs = Vec::with_capacity(model.inputs.len());
        for spec in &model.inputs {
            let value = sample.inputs.get(&spec.name).ok_or_else(|| invalid(format!("input `{}` is missing", spec.name)))?;
            inputs.push(sample_tensor(spec, value).map_err(invalid)?);
        }
        let outputs = model.run(inputs).map_err(|err| invalid(format!("the model failed on it: {err}")))?;
        for (name, expected) in &sample.outputs {
            let index = model.outputs.iter().position(|s| &s.name == name).ok_or_else(|| {
                let names: Vec<String> = model.outputs.iter().map(|s| format!("`{}`", s.name)).collect();
                invalid(format!("the model has no output `{name}`; its outputs are {}", names.join(", ")))
            })?;
            let mut want = Vec::new();
            flatten_expected(expected, labels, &mut want).map_err(invalid)?;
            let got = computed_values(&outputs[index]).map_err(invalid)?;
            if want.len() != got.len() {
                return Err(Rejection::SampleMismatch(format!(
                    "sample {number}, output `{name}`: the sidecar expects {} values but the model returned {} (shape {:?})",
                    want.len(),
                    got.len(),
                    outputs[index].shape()
                )));
            }
            if let Err(worst) = compare(&want, &got, tolerance, &mut max_abs) {
                return Err(Rejection::SampleMismatch(format!(
                    "sample {number}, output `{name}`, element {}: expected {}, computed {} \
                     (tolerance: absolute {} + relative {} of the expected value); \
                     check that the sidecar's samples come from this model, or that the model only uses operators tract computes correctly at its opset",
                    worst.index, worst.expected, worst.computed, tolerance.absolute, tolerance.relative
                )));
            }
        }
    }
    Ok((sidecar.samples.len(), (!sidecar.samples.is_empty()).then_some(max_abs)))
}

/// Validates an upload and returns its servable form, or the reason to
/// reject it.
pub fn validate(name: &ModelName, bytes: &[u8], sidecar: Option<&Sidecar>, max_bytes: u64) -> Result<Validated, Rejection> {
    if bytes.len() as u64 > max_bytes {
        return Err(Rejection::TooLarge { size: bytes.len() as u64, limit: max_bytes });
    }
    let proto = ml::framework()
        .proto_model_for_read(&mut &bytes[..])
        .map_err(|err| Rejection::NotOnnx(format!("{err:#}")))?;
    let graph = proto.graph.as_ref().ok_or_else(|| Rejection::NotOnnx("it has no graph".into()))?;
    if graph.node.is_empty() {
        return Err(Rejection::EmptyGraph);
    }
    runtime::check_self_contained(graph).map_err(Rejection::ExternalData)?;
    check_output_kinds(graph)?;
    let default_opset = ml::rewrite::opset_version(&proto, "");

    let Prepared { proto: mut servable_proto, labels: zipmap_labels, probability_output, rewrites } =
        ml::prepare(proto).map_err(Rejection::UnsupportedOperator)?;
    let graph = servable_proto.graph.as_mut().expect("checked above");
    let mut pruned = false;
    if let Some(keep) = sidecar.and_then(|s| s.outputs.as_ref()) {
        if let Some(unknown) = keep.iter().find(|name| !graph.output.iter().any(|o| &o.name == *name)) {
            let names: Vec<String> = graph.output.iter().map(|o| format!("`{}`", o.name)).collect();
            return Err(Rejection::InvalidSidecar(format!(
                "`outputs` names `{unknown}`, which the model does not have; its outputs are {}",
                names.join(", ")
            )));
        }
        pruned = keep.len() != graph.output.len();
        graph.output.retain(|o| keep.contains(&o.name));
    }
    check_signature(graph)?;
    let model_labels = declared_labels(graph);

    // Re-encoding drops fields this ONNX schema does not know, so the upload
    // is kept byte for byte unless it really had to change.
    let rewritten = !rewrites.is_empty() || pruned;
    let servable = if rewritten { servable_proto.encode_to_vec() } else { bytes.to_vec() };

    let started = Instant::now();
    let model = LoadedModel::load(name.as_str(), &servable).map_err(|err| match err {
        shared::Error::ModelLoad { reason, .. } => Rejection::LoadFailed(reason),
        other => Rejection::LoadFailed(other.to_string()),
    })?;
    let load_ms = started.elapsed().as_secs_f64() * 1000.0;
    for batch in [1, 3] {
        smoke(&model, batch).map_err(|reason| Rejection::SmokeFailed { batch, reason })?;
    }

    let features = sidecar.and_then(Sidecar::features);
    if let Some(features) = &features {
        let columns = match model.inputs.as_slice() {
            [input] if input.shape.len() == 2 => input.shape[1],
            _ => {
                return Err(Rejection::InvalidSidecar(format!(
                    "`features` names the columns of a single 2-D input, but the model takes {}",
                    model.input_names()
                )))
            }
        };
        if columns >= 0 && columns as usize != features.len() {
            return Err(Rejection::InvalidSidecar(format!(
                "`features` has {} names but input `{}` has {columns} columns",
                features.len(),
                model.inputs[0].name
            )));
        }
    }
    let labels = sidecar.and_then(|s| s.labels.clone()).or(zipmap_labels).or(model_labels);
    let probability_output = sidecar.and_then(|s| s.probability_output.clone()).or(probability_output);
    if let Some(output) = &probability_output {
        if !model.outputs.iter().any(|s| &s.name == output) {
            return Err(Rejection::InvalidSidecar(format!("probability_output `{output}` is not an output of the model")));
        }
    }
    if let Some(labels) = sidecar.and_then(|s| s.labels.as_ref()) {
        check_label_count(&model.outputs, labels.len(), probability_output.as_deref())?;
    }

    let (samples_checked, max_abs_error) = match sidecar {
        Some(sidecar) => check_samples(&model, sidecar, labels.as_deref())?,
        None => (0, None),
    };

    let mut warnings = Vec::new();
    if let Some(opset) = default_opset.filter(|&v| v > NEWEST_TESTED_OPSET) {
        if samples_checked == 0 {
            warnings.push(format!(
                "the model uses ONNX opset {opset}, above {NEWEST_TESTED_OPSET}, the newest that tract-onnx 0.23.9 is tested \
                 against, and no samples were given to check its outputs; add samples with expected outputs to the sidecar, \
                 or export with target_opset={NEWEST_TESTED_OPSET}"
            ));
        }
    }

    let opset_imports = servable_proto
        .opset_import
        .iter()
        .map(|o| (if o.domain.is_empty() { "ai.onnx".to_string() } else { o.domain.clone() }, o.version))
        .collect();
    let producer = (!servable_proto.producer_name.is_empty())
        .then(|| Producer { name: servable_proto.producer_name.clone(), version: servable_proto.producer_version.clone() });
    Ok(Validated {
        servable,
        rewritten,
        inputs: model.inputs.clone(),
        outputs: model.outputs.clone(),
        features,
        labels,
        probability_output,
        opset_imports,
        producer,
        warnings,
        validation: Validation {
            load_ms,
            smoke_batches: vec![1, 3],
            samples_checked,
            max_abs_error,
            tolerance: sidecar.map(|s| s.tolerance.unwrap_or_default()),
            rewrites,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_shape_follows_first_elements() {
        assert_eq!(nested_shape(&json!([[1, 2, 3], [4, 5, 6]])), vec![2, 3]);
        assert_eq!(nested_shape(&json!([1, 2])), vec![2]);
        assert_eq!(nested_shape(&json!(3)), Vec::<usize>::new());
    }

    #[test]
    fn comparison_reports_worst_element() {
        let want = vec![Expected::Number(1.0), Expected::Number(2.0), Expected::Number(3.0)];
        let got = vec![Expected::Number(1.0), Expected::Number(2.5), Expected::Number(3.1)];
        let mut max_abs = 0.0;
        let worst = compare(&want, &got, Tolerance::default(), &mut max_abs).unwrap_err();
        assert_eq!(worst.index, 1);
        assert_eq!(max_abs, 0.5);
    }

    #[test]
    fn comparison_accepts_float32_rounding() {
        let want = vec![Expected::Number(124.84438)];
        let got = vec![Expected::Number(124.84439)];
        let mut max_abs = 0.0;
        assert!(compare(&want, &got, Tolerance::default(), &mut max_abs).is_ok());
    }

    #[test]
    fn zipmap_rows_flatten_in_label_order() {
        let labels = [ClassLabel::Int(0), ClassLabel::Int(1)];
        let mut out = Vec::new();
        flatten_expected(&json!([{"1": 0.75, "0": 0.25}]), Some(&labels), &mut out).unwrap();
        assert_eq!(out, vec![Expected::Number(0.25), Expected::Number(0.75)]);
    }
}
