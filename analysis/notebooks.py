"""Execute the notebooks against a run: copies with their figures, as .ipynb and as static .html.

The notebooks of the repository (outliers/visualization.ipynb, transfer/dataset_resu.ipynb,
transfer/no_tf.ipynb, outliers/outline.ipynb, transfer/ts_resu2.ipynb) stay without outputs; this
script runs each with nbclient (GALAXY_VAE_RUN=RUN, the kernel "python3" of this environment) and
writes the executed copy into the run, so the figures can be looked at without a kernel. A notebook
whose inputs are missing or out of date is not run: one line names the stage to (re-)run, the
others still run, and the exit status is 1. `make demo` runs each notebook (--only NAME) after the
stages it reads.

READS   outliers/*.ipynb, transfer/*.ipynb (the repository's notebooks) and what they read in RUN:
          visualization  RUN/latent_size/latent_size.csv|.json|.png, reconstructions.npz (analysis/decals_2_3.py)
          dataset_resu   RUN/transfer/pairs.csv, pairs_summary.json, skipped_pairs.csv, pair_labels.csv,
                         pairs_examples.png (transfer/make_pairs.py)
          no_tf          RUN/transfer/metrics_before.json, distances_before.csv, mu_*_before.npy (transfer/no_tf.py)
          outline        RUN/transfer/metrics_before.json, distances_before.csv, pairs_most|least_alike.png,
                         RUN/cache/{decals,bass}_pairs_<S>px/meta.json + shards (transfer/no_tf.py)
          ts_resu2       RUN/transfer/before_after.md, distance_hist.png, adapted.json (transfer/evaluate.py),
                         <method>/history.csv, adapt_summary.json (transfer/adapt.py)
WRITES  RUN/notebooks/<name>.ipynb  the executed copy (outputs and figures)
        RUN/notebooks/<name>.html   the same as one static page, figures embedded (nbconvert)
        RUN/provenance/notebooks/<name>.ipynb|.html.json  inputs: the notebook and every run file it read

    python analysis/notebooks.py --run runs/demo                   # all five
    python analysis/notebooks.py --run runs/demo --only no_tf      # one
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from VAE_model.cli_args import add_runtime_arguments, cli_main, describe_args, positive_int
from VAE_model.errors import GalaxyVAEError
from VAE_model.notebooks import BY_NAME, NOTEBOOKS, execute


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runtime_arguments(parser)   # --seed is recorded; the notebooks only draw (--device is not used)
    parser.add_argument("--only", action="append", choices=list(BY_NAME), metavar="NAME",
                        help=f"execute this notebook only (repeatable; one of {', '.join(BY_NAME)}; default: all)")
    parser.add_argument("--timeout", type=positive_int, default=600,
                        help="seconds one cell may run (default: %(default)s)")
    return parser.parse_args(argv)


@cli_main
def main(argv=None) -> int:
    args = parse_args(argv)
    run = Path(args.run)
    if not run.is_dir():
        print(f"error: {run}: run directory not found; run make_datatxt.py and the stages first", file=sys.stderr)
        return 1
    chosen = [BY_NAME[name] for name in args.only] if args.only else list(NOTEBOOKS)
    settings = describe_args(args)
    failed = []
    for notebook in chosen:
        try:
            result = execute(run, notebook, settings, timeout_s=args.timeout)
        except GalaxyVAEError as error:
            print(f"error: {notebook.source}: {error}", file=sys.stderr)
            failed.append(notebook.name)
            continue
        print(f"{notebook.source}: executed in {result['seconds']:.1f} s, {result['figures']} figure(s) -> "
              f"{result['ipynb']}, {result['html'].name}")
    if failed:
        print(f"error: {len(failed)} of {len(chosen)} notebook(s) not executed ({', '.join(failed)}): "
              "run the stages named above first", file=sys.stderr)
        return 1
    print(f"done: {len(chosen)} notebook(s) executed into {run / 'notebooks'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
