"""Generate the demo catalog: `python data/make_demo.py [OUT_DIR]` (same as `stylerec demo-data`)."""

import sys

from recsys.shop.demo import make_demo_catalog

if __name__ == "__main__":
    print(make_demo_catalog(sys.argv[1] if len(sys.argv) > 1 else "data/demo"))
