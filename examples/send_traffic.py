"""Send a bounded batch of Adult's test rows, optionally shifted, to a kfp-rai server on this machine,
each with a request id, and write the late labels of what was sent: the README's refresh walkthrough.

    python examples/send_traffic.py --port 8080 --rows 1500 --age-shift 15 --labels labels.csv

The server must listen on 127.0.0.1 (this script talks to nothing else); the bearer token comes from
KFP_RAI_SERVING_TOKEN, as for the server.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request

from kfp_rai.core.tables import read_table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080, help="the server's port on 127.0.0.1 (default 8080)")
    parser.add_argument("--model", default="adult-income", help="the served model's name")
    parser.add_argument("--rows", type=int, default=1500, help="how many rows to send (at most 16281)")
    parser.add_argument("--age-shift", type=float, default=0.0, help="years added to every age (a drift)")
    parser.add_argument("--labels", help="write the sent rows' late labels here (id, label, sex, race)")
    args = parser.parse_args()
    token = os.environ.get("KFP_RAI_SERVING_TOKEN", "")
    data = read_table("bundled:adult-test").sample(min(args.rows, 16281), random_state=0)
    ids = [f"req-{i}" for i in range(len(data))]
    inputs = data.drop(columns=["income", "sex", "race"])
    url = f"http://127.0.0.1:{args.port}/v1/models/{args.model}:predict"
    for start in range(0, len(inputs), 50):
        instances = []
        for offset, row in enumerate(inputs.iloc[start : start + 50].to_dict(orient="records")):
            row = {k: (None if v != v else v) for k, v in row.items()}
            row["age"] = row["age"] + args.age_shift
            instances.append({**row, "id": ids[start + offset]})
        request = urllib.request.Request(
            url,
            data=json.dumps({"instances": instances}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 # nosec B310 - loopback only
            response.read()
    if args.labels:
        labels = data[["income", "sex", "race"]].rename(columns={"income": "label"}).assign(id=ids)
        labels.to_csv(args.labels, index=False)
    print(f"sent {len(inputs)} rows to {url}" + (f"; their labels are in {args.labels}" if args.labels else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
