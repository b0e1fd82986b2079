//! Tree ensembles of `ai.onnx.ml` (TreeEnsembleRegressor and
//! TreeEnsembleClassifier, attribute forms of opsets 1 and 3), evaluated over
//! flat node arrays instead of tract's node-by-node walk.
//!
//! The numbers follow onnxruntime's implementation, which is the reference
//! users compare with: aggregation, base values, post transforms and the
//! special rules for binary classifiers whose leaves name only one class.

use std::collections::HashMap;
use std::sync::Arc;

use tract_onnx::model::ParsingContext;
use tract_onnx::pb;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::ops::expandable::inference_wrap;

use super::attrs::Attrs;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
    Leaf,
}

/// One node of the flat array. Branch nodes point at the indices of their
/// children; leaves point at a range of `(target, weight)` contributions.
#[derive(Debug, Clone, Copy)]
struct Node {
    threshold: f64,
    feature: u32,
    mode: Mode,
    missing_goes_true: bool,
    true_next: u32,
    false_next: u32,
    leaf_start: u32,
    leaf_end: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Average,
    Min,
    Max,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostTransform {
    None,
    Logistic,
    Softmax,
    SoftmaxZero,
    Probit,
}

/// The trees of one ensemble, ready to evaluate.
#[derive(Debug)]
pub struct Forest {
    nodes: Vec<Node>,
    roots: Vec<u32>,
    leaf_targets: Vec<u32>,
    leaf_weights: Vec<f64>,
    n_targets: usize,
    /// One more than the highest feature index a branch reads.
    n_features: usize,
    aggregate: Aggregate,
    base_values: Vec<f64>,
    post_transform: PostTransform,
}

fn parse_mode(text: &str) -> Result<Mode, String> {
    Ok(match text {
        "BRANCH_LEQ" => Mode::Leq,
        "BRANCH_LT" => Mode::Lt,
        "BRANCH_GTE" => Mode::Gte,
        "BRANCH_GT" => Mode::Gt,
        "BRANCH_EQ" => Mode::Eq,
        "BRANCH_NEQ" => Mode::Neq,
        "LEAF" => Mode::Leaf,
        other => return Err(format!("node mode `{other}` is not supported")),
    })
}

fn parse_post_transform(text: Option<String>) -> Result<PostTransform, String> {
    Ok(match text.as_deref().unwrap_or("NONE") {
        "NONE" => PostTransform::None,
        "LOGISTIC" => PostTransform::Logistic,
        "SOFTMAX" => PostTransform::Softmax,
        "SOFTMAX_ZERO" => PostTransform::SoftmaxZero,
        "PROBIT" => PostTransform::Probit,
        other => return Err(format!("post_transform `{other}` is not supported")),
    })
}

/// Checks that every list attribute has the length of the first.
fn same_length(attrs: &Attrs, names: &[(&str, usize)]) -> Result<(), String> {
    let (first, expected) = names[0];
    for &(name, len) in &names[1..] {
        if len != expected {
            return Err(format!(
                "{}: attribute `{name}` has {len} entries but `{first}` has {expected}",
                attrs.node_label()
            ));
        }
    }
    Ok(())
}

impl Forest {
    /// Builds the flat arrays from a node's attributes. `prefix` is `target`
    /// for regressors and `class` for classifiers.
    fn parse(attrs: &Attrs, prefix: &str, n_targets: usize) -> Result<Self, String> {
        let label = attrs.node_label();
        let tree_ids = attrs.ints("nodes_treeids");
        let node_ids = attrs.ints("nodes_nodeids");
        let features = attrs.ints("nodes_featureids");
        let modes = attrs.strings("nodes_modes");
        let values = attrs.reals("nodes_values")?;
        let true_ids = attrs.ints("nodes_truenodeids");
        let false_ids = attrs.ints("nodes_falsenodeids");
        let missing = attrs.ints("nodes_missing_value_tracks_true");
        same_length(
            attrs,
            &[
                ("nodes_nodeids", node_ids.len()),
                ("nodes_treeids", tree_ids.len()),
                ("nodes_featureids", features.len()),
                ("nodes_modes", modes.len()),
                ("nodes_values", values.len()),
                ("nodes_truenodeids", true_ids.len()),
                ("nodes_falsenodeids", false_ids.len()),
            ],
        )?;
        if node_ids.is_empty() {
            return Err(format!("{label} has no nodes"));
        }
        if !missing.is_empty() && missing.len() != node_ids.len() {
            return Err(format!("{label}: attribute `nodes_missing_value_tracks_true` has {} entries for {} nodes", missing.len(), node_ids.len()));
        }

        // Nodes are addressed by (tree id, node id); trees keep the order in
        // which they first appear.
        let mut index: HashMap<(i64, i64), u32> = HashMap::with_capacity(node_ids.len());
        let mut tree_order: Vec<i64> = Vec::new();
        for (i, (&tree, &node)) in tree_ids.iter().zip(node_ids).enumerate() {
            if index.insert((tree, node), i as u32).is_some() {
                return Err(format!("{label}: node {node} of tree {tree} is defined twice"));
            }
            if !tree_order.contains(&tree) {
                tree_order.push(tree);
            }
        }

        let target_tree_ids = attrs.ints(&format!("{prefix}_treeids"));
        let target_node_ids = attrs.ints(&format!("{prefix}_nodeids"));
        let target_ids = attrs.ints(&format!("{prefix}_ids"));
        let weights = attrs.reals(&format!("{prefix}_weights"))?;
        same_length(
            attrs,
            &[
                (&format!("{prefix}_nodeids"), target_node_ids.len()),
                (&format!("{prefix}_treeids"), target_tree_ids.len()),
                (&format!("{prefix}_ids"), target_ids.len()),
                (&format!("{prefix}_weights"), weights.len()),
            ],
        )?;
        let mut contributions: HashMap<u32, Vec<(u32, f64)>> = HashMap::new();
        for i in 0..target_node_ids.len() {
            let key = (target_tree_ids[i], target_node_ids[i]);
            let at = *index.get(&key).ok_or_else(|| {
                format!("{label}: a weight refers to node {} of tree {}, which does not exist", key.1, key.0)
            })?;
            let target = target_ids[i];
            if target < 0 || target as usize >= n_targets {
                return Err(format!("{label}: a weight refers to output {target}, but there are {n_targets}"));
            }
            contributions.entry(at).or_default().push((target as u32, weights[i]));
        }

        let mut nodes = Vec::with_capacity(node_ids.len());
        let mut leaf_targets = Vec::new();
        let mut leaf_weights = Vec::new();
        let mut n_features = 0usize;
        for i in 0..node_ids.len() {
            let mode = parse_mode(&modes[i]).map_err(|reason| format!("{label}: {reason}"))?;
            let tree = tree_ids[i];
            let child = |id: i64| -> Result<u32, String> {
                index.get(&(tree, id)).copied().ok_or_else(|| {
                    format!("{label}: node {} of tree {tree} points at node {id}, which does not exist", node_ids[i])
                })
            };
            let (true_next, false_next) = if mode == Mode::Leaf { (0, 0) } else { (child(true_ids[i])?, child(false_ids[i])?) };
            if mode != Mode::Leaf {
                let feature = usize::try_from(features[i]).map_err(|_| format!("{label}: negative feature index {}", features[i]))?;
                n_features = n_features.max(feature + 1);
            }
            let leaf_start = leaf_targets.len() as u32;
            if let Some(list) = contributions.get(&(i as u32)) {
                for &(target, weight) in list {
                    leaf_targets.push(target);
                    leaf_weights.push(weight);
                }
            }
            nodes.push(Node {
                threshold: values[i],
                feature: features[i].max(0) as u32,
                mode,
                missing_goes_true: missing.get(i).is_some_and(|&m| m != 0),
                true_next,
                false_next,
                leaf_start,
                leaf_end: leaf_targets.len() as u32,
            });
        }

        // A tree's root is the node no other node of that tree points at.
        let mut is_child = vec![false; nodes.len()];
        for node in nodes.iter().filter(|n| n.mode != Mode::Leaf) {
            is_child[node.true_next as usize] = true;
            is_child[node.false_next as usize] = true;
        }
        let mut roots = Vec::with_capacity(tree_order.len());
        for tree in &tree_order {
            let root = (0..nodes.len())
                .find(|&i| tree_ids[i] == *tree && !is_child[i])
                .ok_or_else(|| format!("{label}: tree {tree} has no root (its nodes form a cycle)"))?;
            roots.push(root as u32);
        }
        check_acyclic(&nodes, &roots).map_err(|reason| format!("{label}: {reason}"))?;

        let aggregate = match attrs.string("aggregate_function").as_deref().unwrap_or("SUM") {
            "SUM" => Aggregate::Sum,
            "AVERAGE" => Aggregate::Average,
            "MIN" => Aggregate::Min,
            "MAX" => Aggregate::Max,
            other => return Err(format!("{label}: aggregate_function `{other}` is not supported")),
        };
        let base_values = attrs.reals("base_values")?;
        if !base_values.is_empty() && base_values.len() != n_targets && prefix == "target" {
            return Err(format!("{label}: {} base_values for {n_targets} targets", base_values.len()));
        }
        Ok(Forest {
            nodes,
            roots,
            leaf_targets,
            leaf_weights,
            n_targets,
            n_features,
            aggregate,
            base_values,
            post_transform: parse_post_transform(attrs.string("post_transform")).map_err(|r| format!("{label}: {r}"))?,
        })
    }

    /// Accumulates the leaf contributions of every tree for one row into
    /// `scores`, and marks in `has_score` which outputs received any.
    #[inline]
    fn accumulate(&self, row: &[f64], scores: &mut [f64], has_score: &mut [bool]) {
        scores.fill(0.0);
        has_score.fill(false);
        for &root in &self.roots {
            let mut node = &self.nodes[root as usize];
            while node.mode != Mode::Leaf {
                let x = row[node.feature as usize];
                let t = node.threshold;
                // As in onnxruntime: the comparison itself (false for NaN,
                // except in NEQ), or a missing value that tracks true.
                let compared = match node.mode {
                    Mode::Leq => x <= t,
                    Mode::Lt => x < t,
                    Mode::Gte => x >= t,
                    Mode::Gt => x > t,
                    Mode::Eq => x == t,
                    Mode::Neq => x != t,
                    Mode::Leaf => unreachable!("the loop stops at leaves"),
                };
                let go_true = compared || (node.missing_goes_true && x.is_nan());
                node = &self.nodes[if go_true { node.true_next } else { node.false_next } as usize];
            }
            for k in node.leaf_start as usize..node.leaf_end as usize {
                let target = self.leaf_targets[k] as usize;
                let weight = self.leaf_weights[k];
                let score = &mut scores[target];
                *score = match (self.aggregate, has_score[target]) {
                    (Aggregate::Sum | Aggregate::Average, _) => *score + weight,
                    (Aggregate::Min | Aggregate::Max, false) => weight,
                    (Aggregate::Min, true) => score.min(weight),
                    (Aggregate::Max, true) => score.max(weight),
                };
                has_score[target] = true;
            }
        }
    }
}

/// Rejects trees where following children revisits a node, which would make
/// evaluation loop forever.
fn check_acyclic(nodes: &[Node], roots: &[u32]) -> Result<(), String> {
    for &root in roots {
        let mut stack = vec![(root, 0usize)];
        while let Some((index, depth)) = stack.pop() {
            if depth > nodes.len() {
                return Err("a tree contains a cycle".into());
            }
            let node = &nodes[index as usize];
            if node.mode != Mode::Leaf {
                stack.push((node.true_next, depth + 1));
                stack.push((node.false_next, depth + 1));
            }
        }
    }
    Ok(())
}

fn logistic(x: f64) -> f64 {
    let v = 1.0 / (1.0 + (-x.abs()).exp());
    if x < 0.0 {
        1.0 - v
    } else {
        v
    }
}

/// Inverse error function, with the approximation onnxruntime uses.
fn erf_inv(x: f64) -> f64 {
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let x = (1.0 - x) * (1.0 + x);
    let log = x.ln();
    let v = 2.0 / (std::f64::consts::PI * 0.147) + 0.5 * log;
    let v2 = 1.0 / 0.147 * log;
    sign * (-v + (v * v - v2).sqrt()).sqrt()
}

fn probit(x: f64) -> f64 {
    std::f64::consts::SQRT_2 * erf_inv(2.0 * x - 1.0)
}

/// Applies a post transform to a vector of two or more scores.
fn transform(scores: &mut [f64], post: PostTransform) {
    match post {
        PostTransform::None => {}
        PostTransform::Logistic => scores.iter_mut().for_each(|s| *s = logistic(*s)),
        PostTransform::Probit => scores.iter_mut().for_each(|s| *s = probit(*s)),
        PostTransform::Softmax => {
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut total = 0.0;
            for s in scores.iter_mut() {
                *s = (*s - max).exp();
                total += *s;
            }
            scores.iter_mut().for_each(|s| *s /= total);
        }
        PostTransform::SoftmaxZero => {
            // Zero scores stay zero and take no share of the probability.
            let max = scores.iter().copied().filter(|&s| s != 0.0).fold(f64::NEG_INFINITY, f64::max);
            let mut total = 0.0;
            for s in scores.iter_mut() {
                if *s != 0.0 {
                    *s = (*s - max).exp();
                    total += *s;
                }
            }
            if total > 0.0 {
                scores.iter_mut().for_each(|s| *s /= total);
            }
        }
    }
}

/// Class labels of a classifier, as the model declares them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Labels {
    Ints(Vec<i64>),
    Strings(Vec<String>),
}

impl Labels {
    fn len(&self) -> usize {
        match self {
            Labels::Ints(v) => v.len(),
            Labels::Strings(v) => v.len(),
        }
    }

    fn datum_type(&self) -> DatumType {
        match self {
            Labels::Ints(_) => DatumType::I64,
            Labels::Strings(_) => DatumType::String,
        }
    }
}

#[derive(Debug, Clone)]
enum Kind {
    Regressor,
    Classifier {
        labels: Labels,
        /// Two classes with leaves that all name the same class, so the
        /// second score is derived from the first.
        binary: bool,
        weights_all_positive: bool,
    },
}

/// The tract operator that evaluates a [`Forest`].
#[derive(Debug, Clone)]
pub struct TreeEnsemble {
    forest: Arc<Forest>,
    kind: Kind,
}

impl PartialEq for TreeEnsemble {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.forest, &other.forest)
    }
}

impl Eq for TreeEnsemble {}

impl TreeEnsemble {
    /// Columns of the score output: targets, or classes.
    fn n_score_columns(&self) -> usize {
        match &self.kind {
            Kind::Regressor => self.forest.n_targets,
            Kind::Classifier { labels, .. } => labels.len(),
        }
    }

    /// Scores one regressor row into `out`, following onnxruntime: base values
    /// are added to the aggregate, and a single target only takes PROBIT
    /// (onnxruntime ignores the other post transforms there).
    fn regress(&self, scores: &mut [f64], has_score: &[bool], out: &mut [f32]) {
        let forest = &self.forest;
        let n_trees = forest.roots.len() as f64;
        let single = scores.len() == 1;
        for (target, score) in scores.iter_mut().enumerate() {
            let base = forest.base_values.get(target).copied().unwrap_or(0.0);
            *score = match (has_score[target], forest.aggregate) {
                // onnxruntime 1.32 gives a target that no reached leaf weighs
                // its base value when there is one target, and 0 otherwise.
                (false, _) if single => base,
                (false, _) => 0.0,
                (true, Aggregate::Average) => *score / n_trees + base,
                (true, _) => *score + base,
            };
        }
        if scores.len() == 1 {
            if forest.post_transform == PostTransform::Probit {
                scores[0] = probit(scores[0]);
            }
        } else {
            transform(scores, forest.post_transform);
        }
        for (o, s) in out.iter_mut().zip(scores.iter()) {
            *o = *s as f32;
        }
    }

    /// Scores one classifier row into `out` and returns the index of the
    /// predicted class, following onnxruntime's rules.
    fn classify(&self, scores: &mut [f64], has_score: &mut [bool], binary: bool, all_positive: bool, out: &mut [f32]) -> usize {
        let forest = &self.forest;
        let base = &forest.base_values;
        let n_classes = scores.len();
        if n_classes > 2 {
            for (k, &b) in base.iter().enumerate().take(n_classes) {
                scores[k] = if has_score[k] { scores[k] + b } else { b };
                has_score[k] = true;
            }
            let mut best: Option<usize> = None;
            for k in 0..n_classes {
                if has_score[k] && best.is_none_or(|b| scores[k] > scores[b]) {
                    best = Some(k);
                }
            }
            transform(scores, forest.post_transform);
            for (o, s) in out.iter_mut().zip(scores.iter()) {
                *o = *s as f32;
            }
            return best.unwrap_or(0);
        }

        // Two classes. The base values and the choice of the positive score
        // follow onnxruntime, which the ONNX specification leaves open here.
        let mut kept = 2;
        match base.len() {
            2 if has_score[1] => {
                scores[1] = base[1] + scores[0];
                scores[0] = -scores[1];
            }
            2 => {
                scores[1] += base[1];
                scores[0] += base[0];
            }
            1 => {
                scores[0] += base[0];
                if !has_score[1] {
                    kept = 1;
                }
            }
            _ => {
                if !has_score[1] {
                    kept = 1;
                }
            }
        }
        let positive = if kept == 2 && has_score[1] {
            scores[1]
        } else if has_score[0] {
            scores[0]
        } else {
            0.0
        };
        let (label, second) = if binary && all_positive {
            (usize::from(positive > 0.5), SecondScore::Complement)
        } else {
            (usize::from(positive > 0.0), SecondScore::Negated)
        };
        if kept == 2 {
            transform(scores, forest.post_transform);
        } else if forest.post_transform == PostTransform::Probit {
            scores[0] = probit(scores[0]);
            scores[1] = 0.0;
        } else {
            let s = scores[0];
            match second {
                SecondScore::Complement => {
                    scores[0] = 1.0 - s;
                    scores[1] = s;
                }
                SecondScore::Negated if forest.post_transform == PostTransform::Logistic => {
                    scores[0] = logistic(-s);
                    scores[1] = logistic(s);
                }
                SecondScore::Negated => {
                    scores[0] = -s;
                    scores[1] = s;
                }
            }
        }
        out[0] = scores[0] as f32;
        out[1] = scores[1] as f32;
        label
    }
}

enum SecondScore {
    Complement,
    Negated,
}

impl Op for TreeEnsemble {
    fn name(&self) -> StaticName {
        match self.kind {
            Kind::Regressor => "TreeEnsembleRegressor".into(),
            Kind::Classifier { .. } => "TreeEnsembleClassifier".into(),
        }
    }

    op_as_typed_op!();
}

impl EvalOp for TreeEnsemble {
    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let input = input.cast_to::<f64>()?;
        let shape = input.shape();
        let (rows, width) = match shape {
            [rows, width] => (*rows, *width),
            [width] => (1, *width),
            _ => bail!("tree ensemble input must be 1-D or 2-D, got shape {:?}", shape),
        };
        if width < self.forest.n_features {
            bail!("tree ensemble reads feature {} but the input has {width} columns", self.forest.n_features - 1);
        }
        let view = input.try_as_plain_ram()?;
        let data = view.as_slice::<f64>()?;
        let columns = self.n_score_columns();
        let mut out = vec![0f32; rows * columns];
        let mut scores = vec![0f64; self.forest.n_targets.max(columns)];
        let mut has_score = vec![false; scores.len()];
        match &self.kind {
            Kind::Regressor => {
                for (row, out_row) in data.chunks_exact(width.max(1)).zip(out.chunks_exact_mut(columns)) {
                    self.forest.accumulate(row, &mut scores, &mut has_score);
                    self.regress(&mut scores[..columns], &has_score, out_row);
                }
                let scores = tract_ndarray::Array2::from_shape_vec((rows, columns), out)?;
                Ok(tvec!(scores.into_tensor().into_tvalue()))
            }
            Kind::Classifier { labels, binary, weights_all_positive } => {
                let mut winners = Vec::with_capacity(rows);
                for (row, out_row) in data.chunks_exact(width.max(1)).zip(out.chunks_exact_mut(columns)) {
                    self.forest.accumulate(row, &mut scores, &mut has_score);
                    winners.push(self.classify(&mut scores[..columns], &mut has_score[..columns], *binary, *weights_all_positive, out_row));
                }
                let label_tensor = match labels {
                    Labels::Ints(values) => {
                        tract_ndarray::Array1::from_vec(winners.iter().map(|&w| values[w]).collect::<Vec<_>>()).into_tensor()
                    }
                    Labels::Strings(values) => {
                        tract_ndarray::Array1::from_vec(winners.iter().map(|&w| values[w].clone()).collect::<Vec<_>>()).into_tensor()
                    }
                };
                let scores = tract_ndarray::Array2::from_shape_vec((rows, columns), out)?;
                Ok(tvec!(label_tensor.into_tvalue(), scores.into_tensor().into_tvalue()))
            }
        }
    }

    op_out_of_plan!();
}

impl TypedOp for TreeEnsemble {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let rows = inputs[0].shape.iter().next().cloned().unwrap_or_else(|| 1.to_dim());
        let scores = f32::fact([rows.clone(), self.n_score_columns().to_dim()]);
        Ok(match &self.kind {
            Kind::Regressor => tvec!(scores),
            Kind::Classifier { labels, .. } => tvec!(labels.datum_type().fact([rows]), scores),
        })
    }

    as_op!();
}

fn build(node: &pb::NodeProto, classifier: bool) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let attrs = Attrs::new(node);
    let op = if classifier {
        let labels = match (attrs.ints("classlabels_int64s"), attrs.strings("classlabels_strings")) {
            (ints, strings) if !ints.is_empty() && strings.is_empty() => Labels::Ints(ints.to_vec()),
            (ints, strings) if ints.is_empty() && !strings.is_empty() => Labels::Strings(strings),
            _ => bail!("{}: exactly one of classlabels_int64s and classlabels_strings must be set", attrs.node_label()),
        };
        let forest = Forest::parse(&attrs, "class", labels.len()).map_err(|e| anyhow!(e))?;
        let class_ids = attrs.ints("class_ids");
        let mut distinct = class_ids.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        let weights_all_positive = forest.leaf_weights.iter().all(|&w| w >= 0.0);
        TreeEnsemble {
            kind: Kind::Classifier { binary: labels.len() == 2 && distinct.len() == 1, weights_all_positive, labels },
            forest: Arc::new(forest),
        }
    } else {
        let n_targets = attrs.int("n_targets").unwrap_or(1);
        if n_targets < 1 {
            bail!("{}: n_targets is {n_targets}", attrs.node_label());
        }
        let forest = Forest::parse(&attrs, "target", n_targets as usize).map_err(|e| anyhow!(e))?;
        TreeEnsemble { forest: Arc::new(forest), kind: Kind::Regressor }
    };
    let outputs = if classifier { 2 } else { 1 };
    let columns = op.n_score_columns();
    let label_type = match &op.kind {
        Kind::Classifier { labels, .. } => Some(labels.datum_type()),
        Kind::Regressor => None,
    };
    let rules = move |_op: &dyn Op, s: &mut Solver, inputs: &[TensorProxy], outputs: &[TensorProxy]| -> InferenceResult {
        check_input_arity(inputs, 1)?;
        let scores = &outputs[outputs.len() - 1];
        s.equals(&scores.datum_type, DatumType::F32)?;
        s.equals(&scores.rank, 2)?;
        s.equals(&scores.shape[0], &inputs[0].shape[0])?;
        s.equals(&scores.shape[1], columns.to_dim())?;
        if let Some(label_type) = label_type {
            check_output_arity(outputs, 2)?;
            s.equals(&outputs[0].datum_type, label_type)?;
            s.equals(&outputs[0].rank, 1)?;
            s.equals(&outputs[0].shape[0], &inputs[0].shape[0])?;
        } else {
            check_output_arity(outputs, 1)?;
        }
        Ok(())
    };
    Ok((inference_wrap(op, outputs, rules), vec![]))
}

pub fn regressor(_ctx: &ParsingContext, node: &pb::NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    build(node, false)
}

pub fn classifier(_ctx: &ParsingContext, node: &pb::NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    build(node, true)
}
