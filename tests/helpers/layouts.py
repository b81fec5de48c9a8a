"""Tiny copies of each dataset's published layout: same folders, file names, headers and formats.

Images are 8x6 PNG/JPEG/BMP tiles; the label files carry the real column
headers (KonIQ-10k's scores_and_distributions CSV, KADID-10k's dmos.csv,
SPAQ's spreadsheet, BIQ2021's CSV with its trailing empty columns, LIVE-itW's
MATLAB cell arrays), so a loader that passes here reads the real release.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def tile(path: Path, value: int = 128, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full((6, 8, 3), value, np.uint8)
    arr[0, 0] = (255 - value, value, 0)
    Image.fromarray(arr).save(path, format=fmt)
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def koniq(root: Path, variant: str = "scores") -> Path:
    names = ["10004473376.jpg", "10007357496.jpg", "10010379.jpg", "10028318063.jpg"]
    for i, n in enumerate(names):
        tile(root / "1024x768" / n, 40 * i + 20)
    if variant == "scores":
        text = ('"image_name","c1","c2","c3","c4","c5","c_total","MOS","SD","MOS_zscore"\n'
                '"10004473376.jpg",0,0,25,73,7,105,3.828571429,0.527278526,77.38364538\n'
                '"10007357496.jpg",0,3,45,47,1,96,3.479166667,0.580003571,68.63504095\n'
                '"10010379.jpg",1,8,50,40,2,101,3.336633663,0.683256546,65.07733069\n'
                '"10028318063.jpg",2,9,64,25,1,101,3.138613861,0.662861617,59.43993453\n')
        return write(root / "koniq10k_scores_and_distributions.csv", text)
    text = ("image_name,c1,c2,c3,c4,c5,c_total,MOS,SD,set\n"
            "10004473376.jpg,0,0,25,73,7,105,3.828571429,0.527278526,training\n"
            "10007357496.jpg,0,3,45,47,1,96,3.479166667,0.580003571,training\n"
            "10010379.jpg,1,8,50,40,2,101,3.336633663,0.683256546,validation\n"
            "10028318063.jpg,2,9,64,25,1,101,3.138613861,0.662861617,test\n")
    return write(root / "koniq10k_distributions_sets.csv", text)


def kadid(root: Path, refs: int = 4) -> Path:
    lines = ["dist_img,ref_img,dmos,var"]
    for r in range(1, refs + 1):
        tile(root / "images" / f"I{r:02d}.png", 200)
        for d in (1, 10):
            for level in (1, 3, 5):
                name = f"I{r:02d}_{d:02d}_{level:02d}.png"
                tile(root / "images" / name, 200 - 30 * level)
                lines.append(f"{name},I{r:02d}.png,{4.8 - 0.7 * level:.2f},{0.1 * level:.3f}")
    return write(root / "dmos.csv", "\n".join(lines) + "\n")


def spaq(root: Path) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["Image name", "MOS", "Brightness", "Colorfulness", "Contrast", "Noisiness", "Sharpness"])
    for i, mos in enumerate([48.86, 62.5, 33.2, 71.0, 55.5], start=1):
        name = f"{i:05d}.jpg"
        tile(root / "TestImage" / name, 30 * i, "JPEG")
        sheet.append([name, mos, 50.0, 50.0, 50.0, 50.0, 50.0])
    out = root / "Annotations" / "MOS and Image attribute scores.xlsx"
    out.parent.mkdir(parents=True, exist_ok=True)
    book.save(out)
    return out


def gfiqa(root: Path) -> Path:
    lines = ["img_name,mos"]
    for i, mos in enumerate([0.529923862, 0.508623544, 0.71, 0.25], start=1):
        name = f"{831481558 + i}_0.png"
        tile(root / "image" / name, 50 * i)
        lines.append(f"{name},{mos}")
    return write(root / "mos_rating.csv", "\n".join(lines) + "\n")


def biq2021(root: Path) -> Path:
    rows = [("ss03 (3753).jpg", 0.8471), ("ss03 (5215).jpg", 0.7628), ("ss01 (12).jpg", 0.4012),
            ("ss02 (7).jpg", 0.1210), ("ss02 (88).jpg", 0.5555)]
    for i, (name, _) in enumerate(rows):
        stored = name.replace(".jpg", ".JPG") if i == 2 else name  # the release's one '.JPG'
        tile(root / "Images" / stored, 40 * i + 10, "JPEG")
    text = "Image Name,MOS,,\n" + "".join(f"{n},{m},,\n" for n, m in rows)
    return write(root / "Train (Images and MOS).csv", text)


def livec(root: Path, tests: int = 6) -> Path:
    from scipy.io import savemat

    names = [f"t{i}.bmp" for i in range(1, 8)] + [f"{100 + i}.bmp" for i in range(1, tests + 1)]
    mos = [50.0] * 7 + [66.3595, 44.695, 20.1, 80.25, 57.5, 35.0][:tests]
    for n in names[:7]:
        tile(root / "Images" / "trainingImages" / n, 90, "BMP")
    for i, n in enumerate(names[7:]):
        tile(root / "Images" / n, 30 * i + 20, "BMP")
    cells = np.empty((len(names), 1), dtype=object)
    for i, n in enumerate(names):
        cells[i, 0] = np.array([n])
    (root / "Data").mkdir(parents=True, exist_ok=True)
    savemat(root / "Data" / "AllImages_release.mat", {"AllImages_release": cells})
    savemat(root / "Data" / "AllMOS_release.mat", {"AllMOS_release": np.array([mos])})
    savemat(root / "Data" / "AllStdDev_release.mat", {"AllStdDev_release": np.array([[10.0] * len(names)])})
    return root / "Data" / "AllImages_release.mat"


def manifest(root: Path, groups: int = 3) -> Path:
    lines = ["image,mos,group,std,n_ratings,pseudo,distortion,level"]
    for g in (f"p{i}" for i in range(1, groups + 1)):
        tile(root / "images" / f"{g}__pristine.png", 150)
        lines.append(f"images/{g}__pristine.png,10,{g},,,1,none,0")
        for level, mos in ((1, 8.2), (2, 6.1)):
            tile(root / "images" / f"{g}__jpeg_{level}.png", 150 - 40 * level)
            lines.append(f"images/{g}__jpeg_{level}.png,{mos},{g},0.5,40,1,jpeg,{level}")
    return write(root / "manifest.csv", "\n".join(lines) + "\n")


BUILDERS = {"koniq": koniq, "kadid": kadid, "spaq": spaq, "gfiqa": gfiqa, "biq2021": biq2021,
            "livec": livec, "derm": manifest}
