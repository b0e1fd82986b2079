//! Loading and running ONNX models with tract. A model is parsed, given a
//! symbol for every dynamic dimension, optimised and made runnable once, then
//! run for any batch size. Panics inside tract are caught and returned as
//! errors, so one bad model or input never takes the process down.

pub mod cache;
pub mod ml;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use tract_onnx::pb;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

use crate::error::{Error, Result};
use crate::manifest::TensorSpec;
use crate::tensor::DataType;

pub use cache::{CacheKey, ModelCache};

/// A model made runnable once and shared by every request that uses it.
#[derive(Debug)]
pub struct LoadedModel {
    /// `name:version`, for messages and logs.
    pub label: String,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    plan: std::sync::Arc<TypedRunnableModel>,
    /// Bytes this model is assumed to hold in memory, for the cache budget.
    pub memory_estimate: u64,
    /// Milliseconds spent parsing, optimising and planning.
    pub compile_ms: f64,
}

/// Returns the panic payload as text.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Rejects initializers stored outside the model file: they would make tract
/// read other files, and a registered model must be self-contained.
pub fn check_self_contained(graph: &pb::GraphProto) -> std::result::Result<(), String> {
    for tensor in &graph.initializer {
        if tensor.data_location == Some(pb::tensor_proto::DataLocation::External as i32) || !tensor.external_data.is_empty() {
            return Err(format!(
                "initializer `{}` stores its data in an external file; re-export the model with all weights inside the .onnx file",
                tensor.name
            ));
        }
    }
    for node in &graph.node {
        for attribute in &node.attribute {
            for subgraph in attribute.g.iter().chain(&attribute.graphs) {
                check_self_contained(subgraph)?;
            }
        }
    }
    Ok(())
}

/// Decodes the bytes of an ONNX file.
pub fn decode(bytes: &[u8]) -> std::result::Result<pb::ModelProto, String> {
    let proto = ml::framework()
        .proto_model_for_read(&mut &bytes[..])
        .map_err(|err| format!("the bytes are not an ONNX model ({err:#})"))?;
    let graph = proto.graph.as_ref().ok_or("the ONNX model has no graph")?;
    check_self_contained(graph)?;
    Ok(proto)
}

fn spec_dims<'a>(dims: impl IntoIterator<Item = &'a TDim>) -> Vec<i64> {
    dims.into_iter().map(|d| d.to_i64().unwrap_or(-1)).collect()
}

/// Gives each input a fully known type and rank, with a symbol for every
/// dimension the file leaves unknown. The first dimension of every input shares
/// one symbol, `batch`, because it is the batch dimension in the models users
/// export, and inputs combined in one operator must agree on it.
fn declare_input_facts(model: &mut InferenceModel) -> std::result::Result<(), String> {
    let batch = model.symbols.sym("batch");
    for ix in 0..model.inputs.len() {
        let name = model.node(model.inputs[ix].node).name.clone();
        let fact = model.input_fact(ix).map_err(|err| format!("{err:#}"))?.clone();
        let datum = fact
            .datum_type
            .concretize()
            .ok_or_else(|| format!("input `{name}` has no declared element type"))?;
        if fact.shape.is_open() {
            return Err(format!("input `{name}` has no declared rank; export the model with input shapes"));
        }
        let dims: TVec<TDim> = fact
            .shape
            .dims()
            .enumerate()
            .map(|(axis, dim)| match dim.concretize() {
                Some(dim) => dim,
                None if axis == 0 => batch.to_dim(),
                None => model.symbols.sym(&format!("{name}_{axis}")).to_dim(),
            })
            .collect();
        model
            .set_input_fact(ix, InferenceFact::dt_shape(datum, dims))
            .map_err(|err| format!("input `{name}`: {err:#}"))?;
    }
    Ok(())
}

/// Describes a typed input or output. Outputs may be strings (BYTES), such as
/// a classifier's labels; inputs may not.
fn tensor_spec(name: String, fact: &TypedFact, allow_bytes: bool) -> std::result::Result<TensorSpec, String> {
    // tract types some integer outputs, such as a Cast to int64, as symbolic
    // dimensions; they are returned as INT64.
    let datum = if fact.datum_type == DatumType::TDim { DatumType::I64 } else { fact.datum_type };
    let datatype = DataType::from_datum(datum)
        .filter(|dt| allow_bytes || *dt != DataType::Bytes)
        .ok_or_else(|| format!("tensor `{name}` has element type {:?}, which the service cannot carry", fact.datum_type))?;
    Ok(TensorSpec { name, datatype, shape: spec_dims(fact.shape.iter()) })
}

impl LoadedModel {
    /// Parses, optimises and plans a decoded model. Returns
    /// [`Error::ModelLoad`] with tract's reason when any step fails or panics.
    pub fn compile(label: &str, proto: &pb::ModelProto, file_size: u64) -> Result<Self> {
        let started = Instant::now();
        let fail = |reason: String| Error::ModelLoad { model: label.to_string(), reason };
        let compiled = catch_unwind(AssertUnwindSafe(|| -> std::result::Result<_, String> {
            let mut model = ml::framework().model_for_proto_model(proto).map_err(|err| format!("{err:#}"))?;
            let input_names: Vec<String> = model.inputs.iter().map(|o| model.node(o.node).name.clone()).collect();
            let output_names: Vec<String> = model
                .outputs
                .iter()
                .map(|o| model.outlet_label(*o).map(str::to_string).unwrap_or_else(|| model.node(o.node).name.clone()))
                .collect();
            declare_input_facts(&mut model)?;
            let typed = model.into_optimized().map_err(|err| format!("{err:#}"))?;
            let inputs = input_names
                .into_iter()
                .enumerate()
                .map(|(ix, name)| tensor_spec(name, typed.input_fact(ix).map_err(|e| format!("{e:#}"))?, false))
                .collect::<std::result::Result<Vec<_>, String>>()?;
            let outputs = output_names
                .into_iter()
                .enumerate()
                .map(|(ix, name)| tensor_spec(name, typed.output_fact(ix).map_err(|e| format!("{e:#}"))?, true))
                .collect::<std::result::Result<Vec<_>, String>>()?;
            let plan = typed.into_runnable().map_err(|err| format!("{err:#}"))?;
            Ok((inputs, outputs, plan))
        }));
        let (inputs, outputs, plan) = match compiled {
            Ok(result) => result.map_err(fail)?,
            Err(payload) => return Err(fail(format!("tract panicked: {}", panic_message(&*payload)))),
        };
        Ok(LoadedModel {
            label: label.to_string(),
            inputs,
            outputs,
            plan,
            // NOTE: an estimate. tract keeps the weights once and may keep a
            // repacked copy for matrix products, hence twice the file size.
            memory_estimate: file_size.saturating_mul(2),
            compile_ms: started.elapsed().as_secs_f64() * 1000.0,
        })
    }

    /// Decodes an ONNX file, rewrites its scikit-learn operators and
    /// compiles it.
    pub fn load(label: &str, bytes: &[u8]) -> Result<Self> {
        let fail = |reason| Error::ModelLoad { model: label.to_string(), reason };
        let proto = decode(bytes).map_err(fail)?;
        let prepared = ml::prepare(proto).map_err(fail)?;
        Self::compile(label, &prepared.proto, bytes.len() as u64)
    }

    /// Checks tensors against the model's inputs, in the model's input order.
    /// Returns [`Error::InvalidInput`] naming the tensor for a wrong element
    /// type, rank or fixed dimension.
    pub fn check_inputs(&self, tensors: &[Tensor]) -> Result<()> {
        if tensors.len() != self.inputs.len() {
            return Err(Error::invalid_input(format!(
                "model `{}` takes {} inputs ({}) but {} were given",
                self.label,
                self.inputs.len(),
                self.input_names(),
                tensors.len()
            )));
        }
        for (spec, tensor) in self.inputs.iter().zip(tensors) {
            let datatype = DataType::from_datum(tensor.datum_type());
            if datatype != Some(spec.datatype) {
                return Err(Error::invalid_input(format!(
                    "input `{}` expects datatype {} but received {}",
                    spec.name,
                    spec.datatype,
                    datatype.map(DataType::name).unwrap_or("an unsupported type")
                )));
            }
            let shape = tensor.shape();
            let fits = shape.len() == spec.shape.len()
                && spec.shape.iter().zip(shape).all(|(&want, &got)| want < 0 || want as usize == got);
            if !fits {
                return Err(Error::invalid_input(format!(
                    "input `{}` expects shape {:?} (-1 is any size) but received {:?}",
                    spec.name, spec.shape, shape
                )));
            }
        }
        Ok(())
    }

    pub fn input_names(&self) -> String {
        self.inputs.iter().map(|s| format!("`{}`", s.name)).collect::<Vec<_>>().join(", ")
    }

    /// Runs the model. Inputs are checked first; a tract error or panic becomes
    /// [`Error::Inference`].
    pub fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        self.check_inputs(&inputs)?;
        let inputs: TVec<TValue> = inputs.into_iter().map(TValue::from).collect();
        let fail = |reason: String| Error::Inference { model: self.label.clone(), reason };
        match catch_unwind(AssertUnwindSafe(|| self.plan.run(inputs))) {
            Ok(Ok(outputs)) => outputs
                .into_iter()
                .map(|value| {
                    let tensor = value.into_tensor();
                    if tensor.datum_type() == DatumType::TDim {
                        tensor.cast_to::<i64>().map(|t| t.into_owned()).map_err(|err| fail(format!("{err:#}")))
                    } else {
                        Ok(tensor)
                    }
                })
                .collect(),
            Ok(Err(err)) => Err(fail(format!("{err:#}"))),
            Err(payload) => Err(fail(format!("tract panicked: {}", panic_message(&*payload)))),
        }
    }
}
