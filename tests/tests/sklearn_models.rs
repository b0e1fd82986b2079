//! scikit-learn exports on the shared runtime, compared with the outputs
//! onnxruntime 1.32.0 recorded for them (`tests/fixtures/sklearn`, made by
//! `scripts/train_sklearn.py`). Covers the `ai.onnx.ml` operators that tract
//! lacks or gets wrong: Scaler, tree ensembles, ZipMap, Imputer, Binarizer,
//! OneHotEncoder and FeatureVectorizer.

use maas_tests::registry::read_json;
use maas_tests::repo_root;
use serde_json::Value;
use shared::runtime::LoadedModel;
use shared::tensor::{DataType, Values};
use shared::tract_onnx::prelude::{DatumType, Tensor};

fn fixture(name: &str) -> std::path::PathBuf {
    repo_root().join("tests/fixtures/sklearn").join(name)
}

fn load(case: &str) -> Result<LoadedModel, shared::Error> {
    let bytes = std::fs::read(fixture(&format!("{case}.onnx"))).unwrap();
    LoadedModel::load(case, &bytes)
}

/// Appends JSON values, reading the string "NaN" as a float NaN.
fn push_values(values: &mut Values, value: &Value) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| push_values(values, item)),
        Value::String(text) if text == "NaN" => assert!(values.push_f64(f64::NAN)),
        other => values.push_json(other).unwrap(),
    }
}

fn tensor_from(entry: &Value) -> Tensor {
    let datatype = DataType::parse(entry["datatype"].as_str().unwrap()).unwrap();
    let shape: Vec<usize> = entry["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let mut values = Values::with_capacity(datatype, shape.iter().product()).unwrap();
    push_values(&mut values, &entry["data"]);
    values.into_tensor(&shape).unwrap()
}

fn flatten(value: &Value, out: &mut Vec<Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| flatten(item, out)),
        other => out.push(other.clone()),
    }
}

/// Reads an output as JSON values: strings, or numbers as f64.
fn output_values(tensor: &Tensor) -> Vec<Value> {
    if tensor.datum_type() == DatumType::String {
        let view = tensor.try_as_plain_ram().unwrap();
        return view.as_slice::<String>().unwrap().iter().map(|s| Value::from(s.as_str())).collect();
    }
    let cast = tensor.cast_to::<f64>().unwrap();
    let view = cast.try_as_plain_ram().unwrap();
    view.as_slice::<f64>().unwrap().iter().map(|&v| if v.is_nan() { Value::from("NaN") } else { Value::from(v) }).collect()
}

/// Runs the 64 recorded rows and compares every output: numbers within
/// float32 tolerance (1e-5 absolute plus 1e-4 relative), labels exactly.
fn check_parity(case: &str) {
    let expected = read_json(&fixture(&format!("{case}.expected.json")));
    let model = load(case).unwrap_or_else(|err| panic!("{case}: {err}"));
    let inputs: Vec<Tensor> = model.inputs.iter().map(|spec| tensor_from(&expected["inputs"][&spec.name])).collect();
    let outputs = model.run(inputs).unwrap_or_else(|err| panic!("{case}: {err}"));
    let recorded = expected["outputs"].as_object().unwrap();
    assert!(!recorded.is_empty());
    for (name, want) in recorded {
        let index = model
            .outputs
            .iter()
            .position(|spec| &spec.name == name)
            .unwrap_or_else(|| panic!("{case}: output `{name}` is missing from {:?}", model.outputs));
        let mut want_values = Vec::new();
        flatten(&want["data"], &mut want_values);
        let got_values = output_values(&outputs[index]);
        assert_eq!(got_values.len(), want_values.len(), "{case}: output `{name}` has shape {:?}", outputs[index].shape());
        for (element, (got, want)) in got_values.iter().zip(&want_values).enumerate() {
            match (got.as_f64(), want.as_f64()) {
                (Some(g), Some(w)) => {
                    let tolerance = 1e-5 + 1e-4 * w.abs();
                    assert!((g - w).abs() <= tolerance, "{case}: output `{name}` element {element}: {g} != {w}");
                }
                _ => assert_eq!(got, want, "{case}: output `{name}` element {element}"),
            }
        }
    }
}

macro_rules! parity {
    ($($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                check_parity(stringify!($case));
            }
        )*
    };
}

parity!(
    esol_scaler_mlp,
    esol_rf_regressor,
    airfoil_gbr,
    airfoil_gbr_double,
    esol_rf_multitarget,
    esol_rf_classifier_zipmap,
    esol_rf_classifier,
    esol_rf_multiclass_strings,
    esol_gb_classifier,
    esol_gb_multiclass,
    esol_logistic,
    esol_linear,
    esol_imputer,
    esol_normalizer,
    esol_binarizer,
    esol_column_transformer,
    esol_feature_vectorizer,
    esol_onehot_int,
    trees_aggregate_sum,
    trees_aggregate_average,
    trees_aggregate_min,
    trees_aggregate_max,
    trees_post_logistic,
    trees_post_logistic_two_targets,
    trees_classifier_binary_mixed,
    trees_classifier_multiclass_softmax,
    trees_classifier_two_ids,
    trees_double_as_tensor,
);

#[test]
fn zipmap_output_becomes_probability_tensor() {
    let model = load("esol_rf_classifier_zipmap").unwrap();
    let probability = model.outputs.iter().find(|s| s.name == "output_probability").unwrap();
    assert_eq!(probability.datatype, DataType::Fp32);
    assert_eq!(probability.shape, vec![-1, 2]);
}

#[test]
fn svm_regressor_is_rejected_with_alternatives() {
    let err = load("esol_svr").unwrap_err().to_string();
    assert!(err.contains("operator SVMRegressor (ai.onnx.ml) is not supported"), "{err}");
    assert!(err.contains("supported ai.onnx.ml operators are ArrayFeatureExtractor, Binarizer"), "{err}");
    assert!(err.contains("export a tree ensemble"), "{err}");
}

#[test]
fn string_label_encoder_is_rejected() {
    let err = load("esol_label_encoder_strings").unwrap_err().to_string();
    assert!(err.contains("LabelEncoder"), "{err}");
    assert!(err.contains("numeric tensors only"), "{err}");
}
