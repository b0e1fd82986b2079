"""Records the size of each Lambda zip that `make build` wrote, with the commit
and architecture, so that `make bench` can put them in BENCHMARKS.md.

Usage: python3 bench/zip_sizes.py LAMBDA_DIR ARCH"""

import json
import subprocess
import sys
from pathlib import Path


def main():
    lambda_dir, arch = Path(sys.argv[1]), sys.argv[2]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip()
    sizes = {path.parent.name: path.stat().st_size for path in sorted(lambda_dir.glob("*/bootstrap.zip"))}
    if not sizes:
        sys.exit(f"no */bootstrap.zip under {lambda_dir}; run `make build` first")
    record = {"commit": commit + ("-dirty" if dirty else ""), "arch": arch, "sizes": sizes}
    (lambda_dir / "sizes.json").write_text(json.dumps(record, indent=2) + "\n")
    for name, size in sizes.items():
        print(f"{name}: {size:,} bytes ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
