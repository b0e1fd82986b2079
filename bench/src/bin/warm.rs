//! Warm, in-process latency of the predict service against raw tract on the
//! same model and rows. The service parses the JSON request, checks it, runs
//! the cached model and encodes the response. The hand-written tract handler
//! does the same JSON work with no checks, registry or cache, and raw tract
//! only builds the input tensor, runs its plan and reads the output. Two more
//! rows time parts of the service alone: the cached model lookup and the
//! runtime's `run`.
//!
//! Usage: `warm <registry folder> <test split csv> <iterations>`. Prints one
//! JSON object per measurement on stdout.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use predict::service::ApiRequest;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::models::Models;
use shared::registry::Registry;
use shared::runtime::ModelCache;
use shared::store::fs::FolderStore;
use tract_onnx::prelude::*;

const MODEL: &str = "esol-solubility";

/// Request fields that a hand-written handler needs for this model.
#[derive(Deserialize)]
struct MinimalRequest {
    inputs: Vec<MinimalInput>,
}

#[derive(Deserialize)]
struct MinimalInput {
    shape: Vec<usize>,
    data: Vec<Vec<f32>>,
}

#[derive(Serialize)]
struct MinimalResponse<'a> {
    model_name: &'a str,
    model_version: &'a str,
    outputs: [MinimalOutput<'a>; 1],
}

#[derive(Serialize)]
struct MinimalOutput<'a> {
    name: &'a str,
    datatype: &'a str,
    shape: &'a [usize],
    data: &'a [f32],
}

fn summarize(name: &str, batch: usize, samples: &mut [Duration]) -> serde_json::Value {
    samples.sort();
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    let median = micros(samples[samples.len() / 2]);
    let p99 = micros(samples[samples.len() * 99 / 100]);
    json!({"measure": name, "batch": batch, "iterations": samples.len(), "median_us": median, "p99_us": p99})
}

fn time<F: FnMut()>(iterations: usize, mut work: F) -> Vec<Duration> {
    for _ in 0..iterations / 10 {
        work();
    }
    (0..iterations)
        .map(|_| {
            let started = Instant::now();
            work();
            started.elapsed()
        })
        .collect()
}

/// Times an async piece of work inside one running runtime, as a warm Lambda
/// invocation runs it, so entering the runtime is not counted.
async fn time_async<F, Fut>(iterations: usize, mut work: F) -> Vec<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..iterations / 10 {
        work().await;
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        work().await;
        samples.push(started.elapsed());
    }
    samples
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let registry = PathBuf::from(&args[1]);
    let rows = maas_bench::read_descriptor_rows(&args[2]);
    let iterations: usize = args[3].parse().expect("iteration count");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();

    let store = Arc::new(FolderStore::new(&registry));
    let models = Models::new(Registry::new(store, Duration::from_secs(3600)), ModelCache::new(1 << 30));
    let config = predict::Config::from_lookup(|name| match name {
        "MODEL_REPOSITORY" => Some(registry.display().to_string()),
        _ => None,
    })
    .unwrap();
    let service = predict::Service::from_parts(models, config);

    // Raw tract: the same file, with the batch dimension as a symbol.
    let model_path = registry.join(MODEL).join("1").join("model.onnx");
    let mut model = tract_onnx::onnx().model_for_path(&model_path).unwrap();
    let batch = model.symbols.sym("batch");
    model.set_input_fact(0, f32::fact([batch.to_dim(), 6.to_dim()]).into()).unwrap();
    let plan = model.into_optimized().unwrap().into_runnable().unwrap();

    for batch in [1usize, 64] {
        let chosen: Vec<[f32; 6]> = rows.iter().cycle().take(batch).copied().collect();
        let body = json!({"inputs": [{"name": "descriptors", "shape": [batch, 6], "datatype": "FP32", "data": chosen}]}).to_string();
        let request = ApiRequest {
            method: "POST".into(),
            path: format!("/v2/models/{MODEL}/infer"),
            content_type: Some("application/json".into()),
            body: bytes::Bytes::from(body),
            ..Default::default()
        };
        // Load the model into the cache before timing.
        let first = runtime.block_on(service.handle(&request));
        assert_eq!(first.status, 200, "{}", String::from_utf8_lossy(&first.body));

        let mut service_samples = runtime.block_on(time_async(iterations, || async {
            let response = service.handle(&request).await;
            assert_eq!(response.status, 200);
        }));
        println!("{}", summarize("service_v2_json", batch, &mut service_samples));

        let flat: Vec<f32> = chosen.iter().flatten().copied().collect();
        let mut tract_samples = time(iterations, || {
            let input = Tensor::from_shape(&[batch, 6], &flat).unwrap();
            let outputs = plan.run(tvec!(input.into())).unwrap();
            let view = outputs[0].try_as_plain_ram().unwrap();
            std::hint::black_box(view.as_slice::<f32>().unwrap()[0]);
        });
        println!("{}", summarize("raw_tract", batch, &mut tract_samples));

        let mut handler_samples = time(iterations, || {
            let parsed: MinimalRequest = serde_json::from_slice(&request.body).unwrap();
            let input = &parsed.inputs[0];
            let flat: Vec<f32> = input.data.iter().flatten().copied().collect();
            let tensor = Tensor::from_shape(&input.shape, &flat).unwrap();
            let outputs = plan.run(tvec!(tensor.into())).unwrap();
            let view = outputs[0].try_as_plain_ram().unwrap();
            let response = MinimalResponse {
                model_name: MODEL,
                model_version: "1",
                outputs: [MinimalOutput { name: "solubility", datatype: "FP32", shape: outputs[0].shape(), data: view.as_slice::<f32>().unwrap() }],
            };
            std::hint::black_box(serde_json::to_vec(&response).unwrap());
        });
        println!("{}", summarize("tract_json_handler", batch, &mut handler_samples));

        let handle = runtime.block_on(service.models.get(MODEL, None)).unwrap();
        let mut lookup_samples = runtime.block_on(time_async(iterations, || async {
            std::hint::black_box(service.models.get(MODEL, None).await.unwrap());
        }));
        println!("{}", summarize("service_model_lookup", batch, &mut lookup_samples));

        let mut run_samples = time(iterations, || {
            let input = Tensor::from_shape(&[batch, 6], &flat).unwrap();
            std::hint::black_box(handle.model.run(vec![input]).unwrap());
        });
        println!("{}", summarize("service_runtime_run", batch, &mut run_samples));
    }
}
