//! The tract runtime on the fixture models, compared with the outputs that
//! onnxruntime recorded when the fixtures were made.

use maas_tests::registry::{fixture, read_json};
use serde_json::Value;
use shared::runtime::LoadedModel;
use shared::tensor::{DataType, JsonData, Values};
use shared::tract_onnx::prelude::Tensor;
use shared::Error;

fn load(stem: &str) -> LoadedModel {
    let bytes = std::fs::read(fixture(&format!("{stem}.onnx"))).unwrap();
    LoadedModel::load(stem, &bytes).unwrap_or_else(|err| panic!("{stem}: {err}"))
}

/// Builds a tensor from a `{datatype, shape, data}` entry of an expected file.
fn tensor_from(entry: &Value) -> Tensor {
    let datatype = DataType::parse(entry["datatype"].as_str().unwrap()).unwrap();
    let shape: Vec<usize> = entry["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let values = Values::from_json("fixture", datatype, &shape, &entry["data"].to_string()).unwrap();
    values.into_tensor(&shape).unwrap()
}

fn flatten(value: &Value, out: &mut Vec<Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| flatten(item, out)),
        other => out.push(other.clone()),
    }
}

/// Runs every input of an expected file and compares every output exactly,
/// through the same JSON encoding the service sends.
fn check_against_onnxruntime(stem: &str, case: &Value) {
    let model = load(stem);
    let inputs: Vec<Tensor> = model.inputs.iter().map(|spec| tensor_from(&case["inputs"][&spec.name])).collect();
    let outputs = model.run(inputs).unwrap();
    for (spec, tensor) in model.outputs.iter().zip(&outputs) {
        let expected = &case["outputs"][&spec.name];
        assert_eq!(spec.datatype.name(), expected["datatype"].as_str().unwrap(), "{stem}: output {}", spec.name);
        let mut want = Vec::new();
        flatten(&expected["data"], &mut want);
        let got: Vec<Value> = serde_json::from_str(&serde_json::to_string(&JsonData(tensor)).unwrap()).unwrap();
        assert_eq!(got.len(), want.len(), "{stem}: output {}", spec.name);
        for (index, (g, w)) in got.iter().zip(&want).enumerate() {
            match (g.as_f64(), w.as_f64()) {
                (Some(g), Some(w)) if g.is_finite() && w.is_finite() && !(g == w) => {
                    let tolerance = 1e-6 + 1e-5 * w.abs();
                    assert!((g - w).abs() <= tolerance, "{stem}: output {} element {index}: {g} != {w}", spec.name);
                }
                _ => assert_eq!(g, w, "{stem}: output {} element {index}", spec.name),
            }
        }
    }
}

#[test]
fn every_numeric_type_and_bool_match_onnxruntime() {
    let expected = read_json(&fixture("all_dtypes.expected.json"));
    check_against_onnxruntime("all_dtypes", &expected);
    let model = load("all_dtypes");
    let types: Vec<&str> = model.inputs.iter().map(|s| s.datatype.name()).collect();
    for name in ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"] {
        assert!(types.contains(&name), "{name} missing from {types:?}");
    }
}

#[test]
fn two_input_model_matches_onnxruntime() {
    check_against_onnxruntime("two_inputs", &read_json(&fixture("two_inputs.expected.json")));
}

#[test]
fn classifier_matches_onnxruntime() {
    check_against_onnxruntime("softmax_classifier", &read_json(&fixture("softmax_classifier.expected.json")));
}

#[test]
fn unnamed_batch_dimension_runs_any_batch_size() {
    // The ESOL model comes from skl2onnx, which leaves the batch dimension
    // without a name; tract needs a symbol for it.
    let bytes = std::fs::read(maas_tests::repo_root().join("examples/registry/esol-solubility/1/model.onnx")).unwrap();
    let model = LoadedModel::load("esol", &bytes).unwrap();
    assert_eq!(model.inputs[0].shape, vec![-1, 6]);
    for rows in [1usize, 3, 64, 1000] {
        let input = Tensor::from_shape(&[rows, 6], &vec![1.0f32; rows * 6]).unwrap();
        let outputs = model.run(vec![input]).unwrap();
        assert_eq!(outputs[0].shape(), &[rows, 1]);
    }
}

#[test]
fn panic_inside_tract_becomes_an_error() {
    let model = load("onehot_panic");
    let bad = Tensor::from_shape(&[1], &[7i64]).unwrap();
    let err = model.run(vec![bad]).unwrap_err();
    assert!(matches!(err, Error::Inference { .. }), "{err}");
    assert!(err.to_string().contains("tract panicked"), "{err}");

    // The same model still serves valid input afterwards.
    let expected = read_json(&fixture("onehot_panic.expected.json"));
    check_against_onnxruntime("onehot_panic", &expected);
}

#[test]
fn bytes_that_are_not_onnx_are_rejected() {
    let bytes = std::fs::read(fixture("bad_bytes.onnx")).unwrap();
    let err = LoadedModel::load("bad", &bytes).unwrap_err();
    assert!(err.to_string().contains("not an ONNX model"), "{err}");
}

#[test]
fn external_data_is_rejected() {
    let bytes = std::fs::read(fixture("external_data.onnx")).unwrap();
    let err = LoadedModel::load("external", &bytes).unwrap_err();
    assert!(err.to_string().contains("initializer `weight` stores its data in an external file"), "{err}");
}

#[test]
fn wrong_type_and_shape_name_the_input() {
    let model = load("two_inputs");
    let a = Tensor::from_shape(&[1, 3], &[1.0f64, 2.0, 3.0]).unwrap();
    let b = Tensor::from_shape(&[1, 3], &[1.0f32, 2.0, 3.0]).unwrap();
    let err = model.run(vec![a, b.clone()]).unwrap_err();
    assert_eq!(err.to_string(), "input `a` expects datatype FP32 but received FP64");

    let a = Tensor::from_shape(&[1, 2], &[1.0f32, 2.0]).unwrap();
    let err = model.run(vec![a, b]).unwrap_err();
    assert!(err.to_string().contains("input `a` expects shape [-1, 3]"), "{err}");
}
