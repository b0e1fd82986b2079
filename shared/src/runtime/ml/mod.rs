//! Support for the scikit-learn exports that tract cannot run as they are:
//! [`rewrite`] turns `ai.onnx.ml` nodes into standard operators before
//! parsing, and [`trees`] replaces tract's tree ensembles with a faster
//! evaluator that matches onnxruntime, labels included.

pub mod attrs;
pub mod rewrite;
pub mod trees;

use std::sync::OnceLock;

use tract_onnx::Onnx;

pub use rewrite::{prepare_with_known_ops, Prepared};

/// Returns the tract ONNX framework with this crate's tree ensemble operators.
pub fn framework() -> &'static Onnx {
    static FRAMEWORK: OnceLock<Onnx> = OnceLock::new();
    FRAMEWORK.get_or_init(|| {
        let mut onnx = tract_onnx::onnx();
        onnx.op_register.insert("TreeEnsembleRegressor", trees::regressor);
        onnx.op_register.insert("TreeEnsembleClassifier", trees::classifier);
        onnx
    })
}

/// Rewrites a decoded model for tract and checks that the framework has
/// every operator it uses. Returns the reason when it does not.
pub fn prepare(proto: tract_onnx::pb::ModelProto) -> Result<Prepared, String> {
    let framework = framework();
    prepare_with_known_ops(proto, &|op| framework.op_register.0.contains_key(op))
}
