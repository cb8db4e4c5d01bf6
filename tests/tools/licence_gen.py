#!/usr/bin/env python3
"""licence_gen — draws synthetic 营业执照 (business licences) with known fields,
for the recognition tests and the benchmark (tests/bench/licence.py). Nothing
is downloaded: the fonts are Debian's Noto CJK (fonts-noto-cjk), the drawing
is PIL's (python3-pil).

The layout follows the 2015 三证合一 licence: a border, the national title
营 业 执 照, the 统一社会信用代码 line, the fields as "label    value" lines
(名称, 类型, 住所, 法定代表人, 注册资本, 成立日期, 营业期限, 经营范围), the
登记机关 with a red seal over it and the date.

  licence_gen.py --out DIR --count N [--variant clean|rotated|blurred|jpeg|noise|degraded|photo]
                 [--seed S]
writes DIR/NNNN.{png,jpg} and DIR/NNNN.json (the fields drawn).

As a module: generate(seed, variant, **overrides) -> (bytes, content_type, fields).
"""
import argparse
import io
import json
import math
import os
import random
import sys

from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_DIR = "/usr/share/fonts/opentype/noto"
SANS = os.path.join(FONT_DIR, "NotoSansCJK-Regular.ttc")
SERIF_BOLD = os.path.join(FONT_DIR, "NotoSerifCJK-Bold.ttc")
SANS_BOLD = os.path.join(FONT_DIR, "NotoSansCJK-Bold.ttc")
# index 2 of the .ttc is the simplified-Chinese face (SC)
SC = 2

USCC_SYMBOLS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
REGIONS = [("350102", "福州市鼓楼区", "福建省福州市鼓楼区", "福州市市场监督管理局"),
           ("350203", "厦门市思明区", "福建省厦门市思明区", "厦门市市场监督管理局"),
           ("110105", "北京市朝阳区", "北京市朝阳区", "北京市朝阳区市场监督管理局"),
           ("310115", "上海市浦东新区", "上海市浦东新区", "上海市市场监督管理局"),
           ("440305", "深圳市南山区", "广东省深圳市南山区", "深圳市市场监督管理局")]
CITY_WORDS = ["福州", "厦门", "泉州", "北京", "上海", "深圳", "杭州", "南京"]
NAME_WORDS = ["华信", "海峡", "东方", "新源", "恒通", "天成", "长江", "国泰", "宏远",
              "金山", "明达", "中科", "安和", "永盛", "正大", "光明", "星河", "云海"]
TRADE = ["信息技术", "科技", "建设工程", "电子", "贸易", "网络科技", "工程咨询", "软件"]
FORMS = ["有限公司", "股份有限公司", "有限责任公司"]
TYPES = ["有限责任公司（自然人投资或控股）", "有限责任公司（法人独资）",
         "股份有限公司（非上市）", "有限责任公司（国有独资）", "其他有限责任公司"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许邓冯韩曹彭曾"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰文建国志红"
ROADS = ["五四路", "湖东路", "工业路", "华林路", "铜盘路", "建设路", "人民路", "中山路"]
BUILDINGS = ["", "A座", "B座", "大厦", "科技园"]
SCOPE = ("软件开发；信息系统集成服务；信息技术咨询服务；数据处理和存储支持服务；"
         "计算机软硬件及辅助设备批发。（依法须经批准的项目，经相关部门批准后方可开展经营活动）")


def uscc(rng, region="350102"):
    body = "91" + region + "".join(rng.choice(USCC_SYMBOLS[:10] + "MAJKLNPQRTUWXY")
                                   for _ in range(9))
    body = body[:17]
    total = sum(USCC_SYMBOLS.index(ch) * w for ch, w in zip(body, USCC_WEIGHTS))
    return body + USCC_SYMBOLS[(31 - total % 31) % 31]


def random_fields(rng):
    region = rng.choice(REGIONS)
    y, m, d = rng.randint(2000, 2023), rng.randint(1, 12), rng.randint(1, 28)
    capital = rng.choice([50, 100, 200, 300, 500, 1000, 2000, 3000, 5000, 10000])
    if rng.random() < 0.5:
        term = f"{y}年{m:02d}月{d:02d}日至长期"
    else:
        term = f"{y}年{m:02d}月{d:02d}日至{y + rng.choice([20, 30, 50])}年{m:02d}月{d - 1 or 1:02d}日"
    return {
        "name": rng.choice(CITY_WORDS) + rng.choice(NAME_WORDS) + rng.choice(TRADE) + rng.choice(FORMS),
        "uscc": uscc(rng, region[0]),
        "type": rng.choice(TYPES),
        "legal_rep": rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2))),
        "capital": f"{capital}万元人民币" if rng.random() < 0.7 else f"人民币{capital}万元",
        "capital_fen": capital * 10000 * 100,
        "founded": f"{y}年{m:02d}月{d:02d}日",
        "domicile": region[2] + rng.choice(ROADS) + f"{rng.randint(1, 300)}号" + rng.choice(BUILDINGS),
        "term": term,
        "authority": region[3],
        "issued": f"{rng.randint(2020, 2024)}年{rng.randint(1, 12):02d}月{rng.randint(1, 28):02d}日",
    }


def font(path, size):
    return ImageFont.truetype(path, size, index=SC)


def draw_seal(img, cx, cy, r, text):
    """A red round seal: ring, star, the authority's name round the top."""
    layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    red = (220, 30, 30, 190)
    d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=red, width=max(4, r // 18))
    star = []
    for i in range(10):
        a = -math.pi / 2 + i * math.pi / 5
        rr = r * 0.28 if i % 2 == 0 else r * 0.11
        star.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
    d.polygon(star, fill=red)
    f = font(SANS_BOLD, int(r * 0.22))
    n = len(text)
    span = math.radians(220)
    for i, ch in enumerate(text):
        a = -math.pi / 2 - span / 2 + span * (i + 0.5) / n
        x, y = cx + r * 0.75 * math.cos(a), cy + r * 0.75 * math.sin(a)
        g = Image.new("RGBA", (int(r * 0.3), int(r * 0.3)), (0, 0, 0, 0))
        ImageDraw.Draw(g).text((g.width / 2, g.height / 2), ch, font=f, fill=red, anchor="mm")
        g = g.rotate(-math.degrees(a) - 90, resample=Image.BICUBIC)
        layer.alpha_composite(g, (int(x - g.width / 2), int(y - g.height / 2)))
    img.alpha_composite(layer)


def draw(fields, width=1100, height=1500):
    img = Image.new("RGBA", (width, height), (252, 250, 244, 255))
    d = ImageDraw.Draw(img)
    # border: an outer ornamental frame and an inner line
    d.rectangle([20, 20, width - 21, height - 21], outline=(150, 110, 40, 255), width=10)
    d.rectangle([42, 42, width - 43, height - 43], outline=(170, 130, 60, 255), width=3)
    d.text((width / 2, 150), "营 业 执 照", font=font(SERIF_BOLD, 84), fill=(30, 30, 30, 255), anchor="mm")
    d.text((width / 2, 235), "（副　本）", font=font(SANS, 30), fill=(40, 40, 40, 255), anchor="mm")
    f = font(SANS, 30)
    ink = (25, 25, 25, 255)
    d.text((90, 300), "统一社会信用代码", font=f, fill=ink)
    d.text((380, 300), fields["uscc"], font=font(SANS, 32), fill=ink)
    rows = [("名　　　　称", fields["name"]), ("类　　　　型", fields["type"]),
            ("住　　　　所", fields["domicile"]), ("法定代表人", fields["legal_rep"]),
            ("注册资本", fields["capital"]), ("成立日期", fields["founded"]),
            ("营业期限", fields["term"])]
    y = 390
    for label, value in rows:
        # labels justified over the same width, as printed licences do
        d.text((90, y), label, font=f, fill=ink)
        d.text((300, y), value, font=f, fill=ink)
        y += 72
    d.text((90, y), "经营范围", font=f, fill=ink)
    sf = font(SANS, 26)
    line, lines = "", []
    for ch in SCOPE:
        if d.textlength(line + ch, font=sf) > width - 400:
            lines.append(line)
            line = ""
        line += ch
    lines.append(line)
    for i, ln in enumerate(lines[:4]):
        d.text((300, y + 4 + i * 40), ln, font=sf, fill=ink)
    d.text((640, height - 300), "登记机关", font=f, fill=ink)
    d.text((620, height - 200), fields["issued"], font=f, fill=ink)
    draw_seal(img, 760, height - 250, 130, fields["authority"])
    return img.convert("RGB")


def draw_other(seed, width=1100, height=800):
    """Not a licence: a notice of plain paragraphs (text, but none of a
    licence's labels), as PNG bytes."""
    rng = random.Random(seed)
    img = Image.new("RGB", (width, height), (255, 255, 255))
    d = ImageDraw.Draw(img)
    d.text((width / 2, 80), "会议通知", font=font(SANS_BOLD, 56), fill=(0, 0, 0), anchor="mm")
    words = ["各部门：", "根据工作安排，定于下周三上午九点在三楼会议室召开季度工作会议，",
             "请各部门负责人准时参加，并提前准备本部门工作总结材料。",
             "会议内容包括上季度工作回顾、下季度工作计划以及其他事项。",
             "请于本周五前将参会人员名单报送办公室。", "特此通知。", "办公室"]
    rng.shuffle(words)
    for i, w in enumerate(words):
        d.text((90, 180 + i * 70), w, font=font(SANS, 30), fill=(0, 0, 0))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def degrade(img, variant, rng):
    """clean | rotated | blurred | jpeg | noise | degraded (some of each) |
    photo (strong blur and small: meant to be unreadable)."""
    quality = None
    if variant in ("rotated", "degraded"):
        img = img.rotate(rng.uniform(-3, 3), resample=Image.BICUBIC, expand=True,
                         fillcolor=(245, 245, 240))
    if variant in ("blurred", "degraded"):
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.8, 1.4)))
    if variant in ("noise", "degraded"):
        w, h = img.size
        noise = Image.effect_noise((w, h), rng.uniform(18, 30)).convert("RGB")
        img = Image.blend(img, noise, 0.12)
        # a scan's uneven lighting: a soft gradient
        grad = Image.linear_gradient("L").resize((w, h)).convert("RGB")
        img = Image.blend(img, grad, 0.06)
    if variant in ("jpeg", "degraded"):
        quality = rng.randint(25, 45)
    if variant == "photo":
        img = img.resize((img.width // 5, img.height // 5)).filter(ImageFilter.GaussianBlur(3))
        img = img.resize((img.width * 2, img.height * 2))
        quality = 20
    return img, quality


def encode(img, quality):
    buf = io.BytesIO()
    if quality is None:
        img.save(buf, "PNG", optimize=False, compress_level=6)
        return buf.getvalue(), "image/png"
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue(), "image/jpeg"


def generate(seed, variant="clean", **overrides):
    rng = random.Random(seed)
    fields = random_fields(rng)
    fields.update(overrides)
    img, quality = degrade(draw(fields), variant, rng)
    if variant == "clean" and overrides.get("_jpeg"):
        quality = 90
    data, ctype = encode(img, quality)
    return data, ctype, {k: v for k, v in fields.items() if not k.startswith("_")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--variant", default="clean",
                    choices=["clean", "rotated", "blurred", "jpeg", "noise", "degraded", "photo"])
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for i in range(a.count):
        data, ctype, fields = generate(a.seed * 100003 + i, a.variant)
        ext = "png" if ctype == "image/png" else "jpg"
        with open(os.path.join(a.out, f"{i:04d}.{ext}"), "wb") as fh:
            fh.write(data)
        with open(os.path.join(a.out, f"{i:04d}.json"), "w") as fh:
            json.dump(fields, fh, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
