//! Rewrites of scikit-learn's `ai.onnx.ml` nodes into standard operators that
//! tract runs, applied to the decoded model before tract parses it. ZipMap is
//! removed so that the class probabilities come out as a plain tensor, and
//! operators the service cannot run are rejected with a message that names
//! what to export instead.

use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataType;

use super::attrs::Attrs;
use crate::manifest::ClassLabel;

pub const ML_DOMAIN: &str = "ai.onnx.ml";

/// `ai.onnx.ml` operators that models may use, directly or by rewriting.
pub const SUPPORTED_ML_OPERATORS: &[&str] = &[
    "ArrayFeatureExtractor",
    "Binarizer",
    "FeatureVectorizer",
    "Imputer",
    "LinearClassifier",
    "LinearRegressor",
    "Normalizer",
    "OneHotEncoder",
    "Scaler",
    "TreeEnsembleClassifier",
    "TreeEnsembleRegressor",
    "ZipMap",
];

/// A model ready for tract, with what the rewrite learned about it.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub proto: pb::ModelProto,
    /// Class labels taken from a removed ZipMap.
    pub labels: Option<Vec<ClassLabel>>,
    /// The output that now carries ZipMap's probabilities as a tensor.
    pub probability_output: Option<String>,
    /// One line per rewritten node, for the registration report.
    pub rewrites: Vec<String>,
}

/// Returns the operator set version the model imports for `domain`.
pub fn opset_version(proto: &pb::ModelProto, domain: &str) -> Option<i64> {
    proto
        .opset_import
        .iter()
        .find(|o| o.domain == domain || (domain.is_empty() && o.domain == "ai.onnx"))
        .map(|o| o.version)
}

fn hint_for(op: &str) -> &'static str {
    match op {
        "SVMRegressor" | "SVMClassifier" => {
            "export a tree ensemble (GradientBoosting*, RandomForest*), an MLP or a linear model instead, \
             or approximate the kernel with sklearn.kernel_approximation.Nystroem followed by a linear model"
        }
        "LabelEncoder" | "DictVectorizer" | "CategoryMapper" | "StringNormalizer" | "TfIdfVectorizer" => {
            "this service takes numeric tensors only, so encode categories as numbers before export \
             (for example with OrdinalEncoder) and send them as float or integer columns"
        }
        "TreeEnsemble" => "export with target_opset={'ai.onnx.ml': 3}, which writes TreeEnsembleRegressor or TreeEnsembleClassifier",
        _ => "export the model with the operators listed",
    }
}

/// Builds the rejection message for an operator no rewrite or kernel covers.
pub fn unsupported_message(op: &str, domain: &str) -> String {
    if domain == ML_DOMAIN {
        format!(
            "operator {op} ({ML_DOMAIN}) is not supported; supported {ML_DOMAIN} operators are {}; {}",
            SUPPORTED_ML_OPERATORS.join(", "),
            hint_for(op)
        )
    } else {
        let domain = if domain.is_empty() { "ai.onnx" } else { domain };
        format!("operator {op} ({domain}) is not supported by the tract runtime (tract-onnx 0.23.9); export the model without it")
    }
}

/// Emits new nodes and constants, named with a `maas_<n>_` prefix that
/// exporters do not use.
struct Builder {
    counter: usize,
    nodes: Vec<pb::NodeProto>,
    initializers: Vec<pb::TensorProto>,
}

impl Builder {
    fn name(&mut self, hint: &str) -> String {
        self.counter += 1;
        format!("maas_{}_{hint}", self.counter)
    }

    fn node(&mut self, op: &str, inputs: &[&str], output: &str, attributes: Vec<pb::AttributeProto>) {
        self.nodes.push(pb::NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            name: output.to_string(),
            op_type: op.to_string(),
            attribute: attributes,
            ..Default::default()
        });
    }

    /// Adds a node with a fresh output name and returns that name.
    fn wire(&mut self, op: &str, inputs: &[&str], attributes: Vec<pb::AttributeProto>) -> String {
        let output = self.name(&op.to_ascii_lowercase());
        self.node(op, inputs, &output, attributes);
        output
    }

    fn floats(&mut self, hint: &str, values: &[f32]) -> String {
        let name = self.name(hint);
        self.initializers.push(pb::TensorProto {
            name: name.clone(),
            data_type: DataType::Float as i32,
            dims: vec![values.len() as i64],
            float_data: values.to_vec(),
            ..Default::default()
        });
        name
    }

    fn ints(&mut self, hint: &str, values: &[i64]) -> String {
        let name = self.name(hint);
        self.initializers.push(pb::TensorProto {
            name: name.clone(),
            data_type: DataType::Int64 as i32,
            dims: vec![values.len() as i64],
            int64_data: values.to_vec(),
            ..Default::default()
        });
        name
    }
}

fn int_attribute(name: &str, value: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i: value,
        ..Default::default()
    }
}

fn ints_attribute(name: &str, values: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints: values.to_vec(),
        ..Default::default()
    }
}

fn cast(builder: &mut Builder, input: &str, to: DataType) -> String {
    builder.wire("Cast", &[input], vec![int_attribute("to", to as i64)])
}

/// Rewrites one `ai.onnx.ml` node, writing the replacement into `builder`.
/// Returns `Ok(false)` when the node is not one this module rewrites.
fn rewrite_node(node: &pb::NodeProto, builder: &mut Builder, default_opset: i64, prepared: &mut Prepared) -> Result<bool, String> {
    let attrs = Attrs::new(node);
    let label = attrs.node_label();
    let input = node.input.first().cloned().unwrap_or_default();
    let output = node.output.first().cloned().unwrap_or_default();
    match node.op_type.as_str() {
        "Scaler" => {
            let offset = attrs.floats("offset");
            let scale = attrs.floats("scale");
            let x = cast(builder, &input, DataType::Float);
            let offset = builder.floats("offset", if offset.is_empty() { &[0.0] } else { offset });
            let scale = builder.floats("scale", if scale.is_empty() { &[1.0] } else { scale });
            let centered = builder.wire("Sub", &[&x, &offset], vec![]);
            builder.node("Mul", &[&centered, &scale], &output, vec![]);
            prepared.rewrites.push(format!("{label}: Scaler as (x - offset) * scale"));
        }
        "ZipMap" => {
            let labels: Vec<ClassLabel> = match (attrs.ints("classlabels_int64s"), attrs.strings("classlabels_strings")) {
                (ints, strings) if strings.is_empty() => ints.iter().map(|&i| ClassLabel::Int(i)).collect(),
                (_, strings) => strings.into_iter().map(ClassLabel::Text).collect(),
            };
            builder.node("Identity", &[&input], &output, vec![]);
            prepared.labels = Some(labels);
            prepared.probability_output = Some(output.clone());
            prepared.rewrites.push(format!("{label}: ZipMap removed; `{output}` is the probability tensor, one column per label"));
        }
        "Imputer" => {
            let floats = attrs.floats("imputed_value_floats");
            let ints = attrs.ints("imputed_value_int64s");
            let (mask, imputed) = if !floats.is_empty() {
                let replaced = attrs.float("replaced_value_float").unwrap_or(0.0);
                let mask = if replaced.is_nan() {
                    builder.wire("IsNaN", &[&input], vec![])
                } else {
                    let replaced = builder.floats("replaced", &[replaced]);
                    builder.wire("Equal", &[&input, &replaced], vec![])
                };
                (mask, builder.floats("imputed", floats))
            } else if !ints.is_empty() {
                let replaced = builder.ints("replaced", &[attrs.int("replaced_value_int64").unwrap_or(0)]);
                let mask = builder.wire("Equal", &[&input, &replaced], vec![]);
                (mask, builder.ints("imputed", ints))
            } else {
                return Err(format!("{label} has neither imputed_value_floats nor imputed_value_int64s"));
            };
            builder.node("Where", &[&mask, &imputed, &input], &output, vec![]);
            prepared.rewrites.push(format!("{label}: Imputer as Where"));
        }
        "Binarizer" => {
            let threshold = builder.floats("threshold", &[attrs.float("threshold").unwrap_or(0.0)]);
            let x = cast(builder, &input, DataType::Float);
            let above = builder.wire("Greater", &[&x, &threshold], vec![]);
            builder.node("Cast", &[&above], &output, vec![int_attribute("to", DataType::Float as i64)]);
            prepared.rewrites.push(format!("{label}: Binarizer as Greater"));
        }
        "OneHotEncoder" => {
            let categories = attrs.ints("cats_int64s");
            if categories.is_empty() {
                return Err(format!(
                    "{label} encodes string categories; this service takes numeric tensors only, \
                     so encode categories as integers before export"
                ));
            }
            let x = cast(builder, &input, DataType::Int64);
            let expanded = if default_opset >= 13 {
                let axes = builder.ints("axes", &[-1]);
                builder.wire("Unsqueeze", &[&x, &axes], vec![])
            } else {
                builder.wire("Unsqueeze", &[&x], vec![ints_attribute("axes", &[-1])])
            };
            let categories = builder.ints("categories", categories);
            let matches = builder.wire("Equal", &[&expanded, &categories], vec![]);
            builder.node("Cast", &[&matches], &output, vec![int_attribute("to", DataType::Float as i64)]);
            prepared.rewrites.push(format!("{label}: OneHotEncoder as Equal against the categories"));
        }
        "FeatureVectorizer" => {
            let casted: Vec<String> = node.input.iter().map(|i| cast(builder, i, DataType::Float)).collect();
            let inputs: Vec<&str> = casted.iter().map(String::as_str).collect();
            builder.node("Concat", &inputs, &output, vec![int_attribute("axis", -1)]);
            prepared.rewrites.push(format!("{label}: FeatureVectorizer as Concat"));
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Marks every graph output the rewrite turned into a tensor with its new
/// element type, since ZipMap's output was a sequence of maps.
fn retype_output(graph: &mut pb::GraphProto, name: &str, elem_type: DataType) {
    if let Some(output) = graph.output.iter_mut().find(|o| o.name == name) {
        output.r#type = Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor { elem_type: elem_type as i32, shape: None })),
            ..Default::default()
        });
    }
}

/// Rewrites the top-level graph so tract can run it. Returns the reason when
/// the model uses an operator that neither tract nor a rewrite covers.
pub fn prepare_with_known_ops(mut proto: pb::ModelProto, known: &dyn Fn(&str) -> bool) -> Result<Prepared, String> {
    let default_opset = opset_version(&proto, "").unwrap_or(0);
    let mut prepared = Prepared { proto: pb::ModelProto::default(), labels: None, probability_output: None, rewrites: vec![] };
    let graph = proto.graph.as_mut().ok_or("the ONNX model has no graph")?;
    let mut builder = Builder { counter: 0, nodes: Vec::with_capacity(graph.node.len()), initializers: vec![] };
    let mut added_standard_ops = false;
    for node in std::mem::take(&mut graph.node) {
        if node.domain == ML_DOMAIN && rewrite_node(&node, &mut builder, if default_opset == 0 { 13 } else { default_opset }, &mut prepared)? {
            added_standard_ops = true;
            continue;
        }
        builder.nodes.push(node);
    }
    graph.node = builder.nodes;
    graph.initializer.extend(builder.initializers);
    if let Some(output) = prepared.probability_output.clone() {
        retype_output(graph, &output, DataType::Float);
    }

    for node in &graph.node {
        if !known(&node.op_type) || (node.domain == ML_DOMAIN && !SUPPORTED_ML_OPERATORS.contains(&node.op_type.as_str())) {
            return Err(unsupported_message(&node.op_type, &node.domain));
        }
    }
    // The standard operators added above need the default domain imported.
    if added_standard_ops && default_opset == 0 {
        proto.opset_import.push(pb::OperatorSetIdProto { domain: String::new(), version: 13 });
    }
    prepared.proto = proto;
    Ok(prepared)
}
