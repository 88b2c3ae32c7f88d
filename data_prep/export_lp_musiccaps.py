"""Export LP-MusicCaps MTT / MSD / MC from the Hugging Face hub to the CSV layout melscribe reads.

    python data_prep/export_lp_musiccaps.py --data-dir DIR [--subsets mtt msd mc]

Needs the hub (``seungheondoh/LP-MusicCaps-*``; MSD is gated: log in with ``huggingface-cli login``).
"""

from __future__ import annotations

import argparse

from melscribe.data import LP_MUSICCAPS, export_lp_musiccaps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--subsets", nargs="+", default=list(LP_MUSICCAPS), choices=list(LP_MUSICCAPS))
    args = parser.parse_args()
    import datasets

    for subset in args.subsets:
        _, hub_name, _, splits = LP_MUSICCAPS[subset]
        for split in splits:
            frame = datasets.load_dataset(hub_name, split=split).to_pandas()
            print(f"{hub_name} {split}: {len(frame)} rows → {export_lp_musiccaps(subset, split, frame, args.data_dir)}")


if __name__ == "__main__":
    main()
