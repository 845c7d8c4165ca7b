"""Small CSV tables written on the fly for the dataset and benchmark tests."""
import csv

import numpy as np


def write_table(path, header, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def write_mixed_table(path):
    """Numeric and categorical features with missing cells; a text target."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        size = rng.normal()
        colour = ["red", "green", "blue"][i % 3]
        label = "big" if size + (colour == "red") > 0.3 else "small"
        rows.append([
            "" if i % 11 == 0 else f"{size:.3f}",
            f"{rng.normal():.3f}",
            "NA" if i % 7 == 0 else colour,
            "" if i == 5 else label,  # a missing target: the row is dropped
        ])
    write_table(path, ["size", "noise", "colour", "label"], rows)
    return path
