"""Score a CSV file with pandas and onnxruntime, as users do without the service.

Reads the file in chunks with `pandas.read_csv`, runs the feature columns
through an onnxruntime session, and appends each chunk with its prediction
column to the output with `DataFrame.to_csv`. This is the comparison for the
batch-score benchmark in bench/batch.py.

    python batch_pandas.py INPUT MODEL_ONNX MANIFEST_JSON OUTPUT [--chunksize N]
"""

import argparse
import json

import numpy as np
import onnxruntime
import pandas as pd


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", help="CSV file with a header that names the model's features")
    parser.add_argument("model", help="model.onnx")
    parser.add_argument("manifest", help="manifest.json with the feature names and the output name")
    parser.add_argument("output", help="CSV file to write: the input columns and the prediction")
    parser.add_argument("--chunksize", type=int, default=100_000, help="rows per read_csv chunk (default: 100000)")
    args = parser.parse_args()

    with open(args.manifest) as file:
        manifest = json.load(file)
    features = [feature["name"] for feature in manifest["features"]]
    input_name = manifest["inputs"][0]["name"]
    output_name = manifest["outputs"][0]["name"]
    session = onnxruntime.InferenceSession(args.model, providers=["CPUExecutionProvider"])

    rows = 0
    with open(args.output, "w", newline="") as out:
        for index, chunk in enumerate(pd.read_csv(args.input, chunksize=args.chunksize)):
            values = chunk[features].to_numpy(dtype=np.float32)
            (predictions,) = session.run([output_name], {input_name: values})
            chunk[output_name] = predictions[:, 0]
            chunk.to_csv(out, header=index == 0, index=False)
            rows += len(chunk)
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
