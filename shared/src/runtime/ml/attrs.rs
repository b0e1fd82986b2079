//! Typed access to the attributes of an ONNX node, with messages that name
//! the node and attribute when one is missing or malformed.

use tract_onnx::pb;

pub struct Attrs<'a> {
    node: &'a pb::NodeProto,
}

impl<'a> Attrs<'a> {
    pub fn new(node: &'a pb::NodeProto) -> Self {
        Attrs { node }
    }

    fn get(&self, name: &str) -> Option<&'a pb::AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == name)
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Describes the node for messages: its name, or its type.
    pub fn node_label(&self) -> String {
        if self.node.name.is_empty() {
            self.node.op_type.clone()
        } else {
            format!("{} `{}`", self.node.op_type, self.node.name)
        }
    }

    pub fn ints(&self, name: &str) -> &'a [i64] {
        self.get(name).map(|a| a.ints.as_slice()).unwrap_or_default()
    }

    pub fn floats(&self, name: &str) -> &'a [f32] {
        self.get(name).map(|a| a.floats.as_slice()).unwrap_or_default()
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        self.get(name).map(|a| a.i)
    }

    pub fn float(&self, name: &str) -> Option<f32> {
        self.get(name).map(|a| a.f)
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.get(name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
    }

    pub fn strings(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|a| a.strings.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect())
            .unwrap_or_default()
    }

    /// Reads real numbers from `<name>_as_tensor` (opset 3 of ai.onnx.ml,
    /// double precision) when present, else from the float list `<name>`.
    pub fn reals(&self, name: &str) -> Result<Vec<f64>, String> {
        if let Some(tensor) = self.get(&format!("{name}_as_tensor")).and_then(|a| a.t.as_ref()) {
            return tensor_reals(tensor).map_err(|reason| format!("{}: attribute `{name}_as_tensor` {reason}", self.node_label()));
        }
        Ok(self.floats(name).iter().map(|&v| v as f64).collect())
    }
}

/// Reads a float or double tensor as `f64` values.
pub fn tensor_reals(tensor: &pb::TensorProto) -> Result<Vec<f64>, String> {
    use pb::tensor_proto::DataType;
    let data_type = DataType::try_from(tensor.data_type).map_err(|_| format!("has unknown element type {}", tensor.data_type))?;
    match data_type {
        DataType::Float if !tensor.raw_data.is_empty() => {
            Ok(tensor.raw_data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64).collect())
        }
        DataType::Float => Ok(tensor.float_data.iter().map(|&v| v as f64).collect()),
        DataType::Double if !tensor.raw_data.is_empty() => {
            Ok(tensor.raw_data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect())
        }
        DataType::Double => Ok(tensor.double_data.clone()),
        other => Err(format!("has element type {other:?}; expected FLOAT or DOUBLE")),
    }
}
