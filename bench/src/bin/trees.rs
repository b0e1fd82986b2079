//! Tree ensemble speed: this service's evaluator against tract's own
//! TreeEnsembleClassifier, on the same 100-tree, depth-8 random forest
//! (`tests/fixtures/sklearn/esol_rf_classifier.onnx`).
//!
//! Usage: `trees <model.onnx> <test split csv> <iterations>`. Prints JSON lines
//! with the median time of one row and of 1000 rows.

use std::time::{Duration, Instant};

use serde_json::json;
use shared::runtime::LoadedModel;
use tract_onnx::prelude::*;

fn rows(csv: &str, count: usize) -> Vec<f32> {
    maas_bench::read_descriptor_rows(csv).iter().cycle().take(count).flatten().copied().collect()
}

fn median(iterations: usize, mut work: impl FnMut()) -> Duration {
    work();
    let mut samples: Vec<Duration> = (0..iterations)
        .map(|_| {
            let started = Instant::now();
            work();
            started.elapsed()
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bytes = std::fs::read(&args[1]).expect("read the model");
    let data = rows(&args[2], 1000);
    let iterations: usize = args[3].parse().expect("iteration count");

    let service = LoadedModel::load("forest", &bytes).expect("the service loads the forest");
    let mut tract_model = tract_onnx::onnx().model_for_read(&mut &bytes[..]).unwrap();
    let batch = tract_model.symbols.sym("batch");
    tract_model.set_input_fact(0, f32::fact([batch.to_dim(), 6.to_dim()]).into()).unwrap();
    let tract_plan = tract_model.into_optimized().unwrap().into_runnable().unwrap();

    for rows in [1usize, 1000] {
        let input = Tensor::from_shape(&[rows, 6], &data[..rows * 6]).unwrap();
        // The big batch runs fewer times: tract takes seconds for it.
        let runs = if rows == 1 { iterations } else { (iterations / 100).max(5) };
        let ours = median(runs, || {
            service.run(vec![input.clone()]).unwrap();
        });
        let theirs = median(if rows == 1 { runs / 10 + 5 } else { 3 }, || {
            tract_plan.run(tvec!(input.clone().into())).unwrap();
        });
        for (measure, time) in [("service_trees", ours), ("tract_trees", theirs)] {
            println!("{}", json!({"measure": measure, "rows": rows, "median_us": time.as_secs_f64() * 1e6}));
        }
    }
}
