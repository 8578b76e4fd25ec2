"""The deterministic synthetic WebShop catalog (the offline default).

Five categories as in WebShop (beauty, food, fashion, furniture, electronics), each with
product types that carry a category path, an attribute pool, option groups and a price
range. A product draws a brand, a product line, 2-4 attributes, 1-3 option groups and a
price; its title, description, feature bullets and reviews are written from templates.
Each product gets an instruction built from 1-3 of its attributes (WebShop's
``instruction_text`` / ``instruction_attributes``) and one goal with one option combination.

Same ``(num_products, seed)`` -> the same catalog, byte for byte, on every machine
(Python's ``random.Random`` only). 100k products take a few seconds; repeated phrases
(features, review texts) are shared string objects, so the catalog stays small in memory.
"""

from __future__ import annotations

import random
import sys

from t2po_gym.envs.webshop.catalog import (
    Catalog,
    Product,
    Review,
    product_price,
    shuffle_goals,
    synthetic_goals,
)

__all__ = ["generate_catalog", "CATEGORIES"]

_SIZES_CLOTHES = ("x-small", "small", "medium", "large", "x-large", "xx-large")
_SIZES_SHOES = ("6", "6.5", "7", "7.5", "8", "8.5", "9", "9.5", "10", "10.5", "11", "12")
_COLORS = ("black", "white", "navy blue", "heather grey", "red", "olive green", "burgundy", "beige",
           "light blue", "pink", "charcoal", "khaki")
_WOOD = ("black", "white", "espresso", "walnut", "rustic brown", "natural oak", "grey wash", "cherry")
_TECH_COLORS = ("black", "white", "silver", "space gray", "midnight blue", "rose gold", "green")

# (type noun, query, category path, attribute pool, option groups, price range, title extras)
_Type = tuple[str, str, str, tuple[str, ...], dict[str, tuple[str, ...]], tuple[float, float]]

CATEGORIES: dict[str, list[_Type]] = {
    "beauty": [
        ("shampoo", "shampoo", "Beauty & Personal Care › Hair Care › Shampoo & Conditioner › Shampoos",
         ("sulfate free", "paraben free", "dry hair", "hair growth", "natural ingredients", "cruelty free",
          "color treated", "argan oil", "tea tree", "damaged hair"),
         {"size": ("8.4 fl oz (pack of 1)", "16.9 fl oz (pack of 1)", "33.8 fl oz (pack of 1)", "16.9 fl oz (pack of 2)"),
          "scent": ("coconut", "lavender", "unscented", "citrus", "mint")}, (6.0, 38.0)),
        ("face moisturizer", "face moisturizer", "Beauty & Personal Care › Skin Care › Face › Creams & Moisturizers",
         ("hyaluronic acid", "sensitive skin", "fragrance free", "anti aging", "oil free", "spf 30",
          "dermatologist tested", "vitamin c", "non comedogenic", "cruelty free"),
         {"size": ("1.7 ounce", "2.5 ounce", "3.4 ounce"), "style": ("day cream", "night cream")}, (9.0, 65.0)),
        ("lipstick", "matte lipstick", "Beauty & Personal Care › Makeup › Lips › Lipstick",
         ("long lasting", "highly pigmented", "cruelty free", "paraben free", "easy apply", "moisturizing",
          "vegan formula", "smudge proof"),
         {"color": ("ruby red", "nude pink", "berry", "coral", "mauve", "deep plum", "classic red")}, (5.0, 28.0)),
        ("nail polish", "nail polish", "Beauty & Personal Care › Foot, Hand & Nail Care › Nail Art & Polish › Nail Polish",
         ("long lasting", "quick dry", "non toxic", "gel effect", "chip resistant", "high gloss"),
         {"color": ("cherry red", "baby pink", "midnight black", "sky blue", "gold glitter", "lilac"),
          "size": ("0.5 fl oz", "0.5 fl oz (pack of 3)")}, (4.0, 22.0)),
        ("eau de parfum", "women perfume", "Beauty & Personal Care › Fragrance › Women's › Eau de Parfum",
         ("long lasting", "floral scent", "travel size", "alcohol free", "fresh scent", "warm vanilla"),
         {"size": ("1 fl oz", "1.7 fl oz", "3.4 fl oz")}, (18.0, 140.0)),
    ],
    "food": [
        ("ground coffee", "ground coffee", "Grocery & Gourmet Food › Beverages › Coffee, Tea & Cocoa › Coffee › Ground Coffee",
         ("medium roast", "dark roast", "usda organic", "fair trade", "non gmo", "single origin", "low acid",
          "kosher certified"),
         {"size": ("12 ounce (pack of 1)", "2 pound (pack of 1)", "12 ounce (pack of 3)"),
          "flavor name": ("original", "french vanilla", "hazelnut", "caramel", "mocha")}, (7.0, 42.0)),
        ("protein bar", "protein bars", "Grocery & Gourmet Food › Snack Foods › Bars › Protein Bars",
         ("gluten free", "high protein", "low sugar", "keto friendly", "non gmo", "individually wrapped",
          "plant based", "dairy free"),
         {"flavor name": ("chocolate chip", "peanut butter", "cookies and cream", "birthday cake", "salted caramel"),
          "size": ("12 count (pack of 1)", "24 count (pack of 1)")}, (12.0, 48.0)),
        ("herbal tea", "herbal tea bags", "Grocery & Gourmet Food › Beverages › Coffee, Tea & Cocoa › Tea › Herbal",
         ("caffeine free", "usda organic", "non gmo", "gluten free", "individually wrapped", "kosher certified"),
         {"flavor name": ("chamomile", "peppermint", "ginger lemon", "hibiscus", "rooibos"),
          "size": ("20 count (pack of 1)", "20 count (pack of 6)")}, (4.0, 30.0)),
        ("dark chocolate", "dark chocolate bar", "Grocery & Gourmet Food › Candy & Chocolate › Chocolate Bars",
         ("fair trade", "sugar free", "dairy free", "usda organic", "keto friendly", "gluten free"),
         {"flavor name": ("70% cacao", "sea salt", "almond", "orange", "mint"),
          "size": ("3.5 ounce (pack of 1)", "3.5 ounce (pack of 12)")}, (3.0, 45.0)),
        ("beef jerky", "beef jerky", "Grocery & Gourmet Food › Meat & Seafood › Jerky & Dried Meats › Beef Jerky",
         ("high protein", "low carb", "grass fed", "gluten free", "ready to eat", "no added sugar"),
         {"flavor name": ("original", "teriyaki", "peppered", "sweet and spicy"),
          "size": ("2.85 ounce (pack of 1)", "10 ounce (pack of 1)")}, (6.0, 35.0)),
        ("extra virgin olive oil", "olive oil", "Grocery & Gourmet Food › Pantry Staples › Cooking Oils › Olive Oil",
         ("cold pressed", "usda organic", "non gmo", "first cold press", "kosher certified"),
         {"size": ("16.9 fl oz", "33.8 fl oz", "101 fl oz")}, (8.0, 55.0)),
    ],
    "fashion": [
        ("t-shirt", "men t-shirt", "Clothing, Shoes & Jewelry › Men › Clothing › Shirts › T-Shirts",
         ("short sleeve", "machine wash", "slim fit", "cotton jersey", "crew neck", "moisture wicking",
          "tagless comfort", "relaxed fit"),
         {"color": _COLORS, "size": _SIZES_CLOTHES}, (8.0, 35.0)),
        ("running shoes", "women running shoes", "Clothing, Shoes & Jewelry › Women › Shoes › Athletic › Running",
         ("rubber sole", "lightweight mesh", "arch support", "non slip", "breathable upper", "memory foam"),
         {"color": _COLORS[:8], "size": _SIZES_SHOES}, (25.0, 120.0)),
        ("skinny jeans", "women jeans", "Clothing, Shoes & Jewelry › Women › Clothing › Jeans",
         ("high waist", "machine wash", "stretch denim", "button closure", "butt lifting", "slim fit"),
         {"color": ("dark wash", "light wash", "black", "medium blue"), "size": ("24", "26", "28", "30", "32")},
         (18.0, 70.0)),
        ("pullover hoodie", "men hoodie", "Clothing, Shoes & Jewelry › Men › Clothing › Fashion Hoodies & Sweatshirts",
         ("long sleeve", "fleece lined", "drawstring closure", "machine wash", "kangaroo pocket", "relaxed fit"),
         {"color": _COLORS, "size": _SIZES_CLOTHES}, (15.0, 60.0)),
        ("maxi dress", "women summer dress", "Clothing, Shoes & Jewelry › Women › Clothing › Dresses › Casual",
         ("short sleeve", "v neck", "high waist", "floral print", "hand wash", "flowy fit"),
         {"color": ("floral blue", "black", "wine red", "yellow", "green print"), "size": _SIZES_CLOTHES[:5]},
         (16.0, 55.0)),
        ("crew socks", "athletic socks", "Clothing, Shoes & Jewelry › Men › Clothing › Socks › Athletic Socks",
         ("moisture wicking", "cushioned sole", "machine wash", "arch support", "breathable cotton"),
         {"color": ("white", "black", "grey", "assorted"), "size": ("medium", "large", "x-large"),
          "item package quantity": ("6 pairs", "12 pairs")}, (7.0, 28.0)),
    ],
    "furniture": [
        ("office chair", "ergonomic office chair", "Home & Kitchen › Furniture › Home Office Furniture › Home Office Chairs",
         ("lumbar support", "height adjustable", "easy assemble", "breathable mesh", "swivel base", "padded armrests",
          "high back"),
         {"color": ("black", "grey", "white", "blue")}, (60.0, 320.0)),
        ("bookshelf", "bookshelf", "Home & Kitchen › Furniture › Living Room Furniture › Bookcases",
         ("easy assemble", "engineered wood", "storage space", "living room", "metal frame", "space saving"),
         {"color": _WOOD, "size": ("3 tier", "4 tier", "5 tier")}, (35.0, 190.0)),
        ("coffee table", "coffee table", "Home & Kitchen › Furniture › Living Room Furniture › Tables › Coffee Tables",
         ("living room", "storage space", "solid wood", "metal legs", "easy assemble", "mid century"),
         {"color": _WOOD}, (50.0, 260.0)),
        ("bed frame", "queen bed frame", "Home & Kitchen › Furniture › Bedroom Furniture › Beds, Frames & Bases › Beds",
         ("easy assemble", "metal frame", "storage space", "noise free", "wood slats", "no box spring needed"),
         {"color": ("black", "white", "grey", "brown"), "size": ("twin", "full", "queen", "king")}, (90.0, 480.0)),
        ("tv stand", "tv stand", "Home & Kitchen › Furniture › Living Room Furniture › TV & Media Furniture",
         ("living room", "storage space", "cable management", "engineered wood", "easy assemble", "led lights"),
         {"color": _WOOD, "size": ("55 inch", "65 inch", "70 inch")}, (70.0, 300.0)),
        ("bar stool", "bar stools set of 2", "Home & Kitchen › Furniture › Game & Recreation Room Furniture › Home Bar Furniture › Barstools",
         ("height adjustable", "swivel base", "faux leather", "footrest", "easy assemble", "metal legs"),
         {"color": ("black", "white", "grey", "brown"), "size": ("counter height", "bar height")}, (55.0, 210.0)),
    ],
    "electronics": [
        ("wireless earbuds", "wireless earbuds", "Electronics › Headphones, Earbuds & Accessories › Headphones & Earbuds › Earbud Headphones",
         ("noise cancelling", "long battery life", "water resistant", "bluetooth 5.3", "wireless charging",
          "touch control", "built in microphone"),
         {"color": _TECH_COLORS[:4]}, (19.0, 150.0)),
        ("bluetooth speaker", "portable bluetooth speaker", "Electronics › Portable Audio & Video › Portable Speakers & Docks › Portable Bluetooth Speakers",
         ("water resistant", "long battery life", "stereo sound", "deep bass", "easy carry", "usb c charging"),
         {"color": _TECH_COLORS}, (18.0, 130.0)),
        ("usb c charger", "usb c fast charger", "Electronics › Computers & Accessories › Laptop Accessories › Chargers & Adapters",
         ("fast charging", "compact size", "dual port", "overheat protection", "foldable plug", "universal compatibility"),
         {"color": ("white", "black"), "size": ("20w", "45w", "65w", "100w")}, (9.0, 60.0)),
        ("hdmi cable", "hdmi cable 4k", "Electronics › Television & Video › Accessories › Cables › HDMI Cables",
         ("high speed", "4k hdr", "braided nylon", "gold plated", "ethernet support"),
         {"size": ("3 feet", "6 feet", "10 feet", "15 feet"), "item package quantity": ("1", "2", "3")}, (5.0, 30.0)),
        ("tablet stand", "tablet stand holder", "Electronics › Computers & Accessories › Tablet Accessories › Stands",
         ("height adjustable", "aluminum alloy", "non slip", "foldable design", "easy install"),
         {"color": ("silver", "black", "space gray")}, (10.0, 45.0)),
        ("smart watch", "smart watch", "Electronics › Wearable Technology › Smartwatches",
         ("heart rate monitor", "sleep tracking", "water resistant", "long battery life", "gps tracking", "bluetooth call"),
         {"color": ("black", "silver", "rose gold", "pink"), "size": ("41mm", "45mm")}, (29.0, 260.0)),
    ],
}

_BRAND_A = ("lu", "ver", "ka", "so", "mi", "to", "za", "bel", "no", "ri", "cor", "qua", "fe", "yo", "ex", "pa",
            "dra", "vi", "ha", "ost")
_BRAND_B = ("mara", "lix", "tone", "vora", "nix", "dale", "rio", "venta", "ma", "sol", "ly", "quin", "ford",
            "ora", "zen", "bright")
_LINES = ("Classic", "Pro", "Essentials", "Premium", "Everyday", "Ultra", "Signature", "Select", "Plus", "Studio",
          "Natural", "Max", "Lite", "Original", "Elite", "Basics", "Prime", "Urban", "Comfort", "Advanced")
_INSTRUCTION = (
    "i am looking for {a} {t}",
    "i need {a} {t}",
    "i want to buy {a} {t}",
    "find me {a} {t}",
    "i would like {a} {t}",
    "i'm looking for {a} {t}",
)
_DESC = (
    "{brand} {line} {type} made for everyday use. {A1} and {a2}, it is a dependable choice. {extra}",
    "Meet the {line} {type} by {brand}: {a1}, {a2} and built to last. {extra}",
    "This {type} from {brand} combines {a1} with {a2}. {extra}",
)
_EXTRA = (
    "Backed by our satisfaction guarantee.",
    "Ships in recyclable packaging.",
    "Loved by thousands of customers.",
    "Designed and tested in our own lab.",
    "A great gift for friends and family.",
)
_FEATURES = (
    "{A}: designed with {a} in mind",
    "{A} for everyday comfort and performance",
    "Quality you can trust - {a}",
)
_REVIEW_TITLES = {5: ("Love it!", "Exactly as described", "Great value"), 4: ("Pretty good", "Works well"),
                  3: ("It's okay", "Average"), 2: ("Not great",), 1: ("Disappointed",)}
_REVIEW_BODIES = {5: ("Works perfectly and arrived fast. Would buy again.", "Great quality for the price."),
                  4: ("Good product, minor issues with packaging.", "Does the job, would recommend."),
                  3: ("It is fine, nothing special.", "Okay for the price."),
                  2: ("Quality is lower than I expected.",), 1: ("Stopped working after a week.",)}
_ASIN_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _brands() -> list[str]:
    return [(a + b).capitalize() for a in _BRAND_A for b in _BRAND_B]


def _article(phrase: str) -> str:
    return "an" if phrase[:1] in "aeiou" else "a"


def generate_catalog(num_products: int = 1000, *, seed: int = 0) -> Catalog:
    """Generate ``num_products`` products (spread over the five categories) and their goals.

    Returns a :class:`Catalog` whose goals are in WebShop's shuffled order (test = first 500).
    """
    if num_products < 1:
        raise ValueError(f"num_products must be >= 1, got {num_products}")
    rng = random.Random(f"t2po-webshop-synthetic-{seed}")
    brands = _brands()
    types = [(cat, t) for cat, ts in CATEGORIES.items() for t in ts]
    intern = sys.intern
    # Phrase pools, shared by every product that uses them.
    features: dict[tuple[int, str], str] = {}
    reviews_pool = {
        s: [Review(title, s, body) for title in _REVIEW_TITLES[s] for body in _REVIEW_BODIES[s]] for s in _REVIEW_TITLES
    }
    products: list[Product] = []
    asins: set[str] = set()
    for i in range(num_products):
        cat, (noun, query, path, attr_pool, groups, (lo, hi)) = types[i % len(types)]
        while True:
            asin = "B0" + "".join(rng.choice(_ASIN_CHARS) for _ in range(8))
            if asin not in asins:
                asins.add(asin)
                break
        brand, line = rng.choice(brands), rng.choice(_LINES)
        attrs = tuple(rng.sample(attr_pool, rng.randint(2, min(4, len(attr_pool)))))
        gnames = list(groups)
        keep = gnames if len(gnames) <= 1 else rng.sample(gnames, rng.randint(1, len(gnames)))
        options: dict[str, tuple[str, ...]] = {}
        for g in gnames:  # keep the pool's group order
            if g in keep:
                vals = groups[g]
                k = rng.randint(min(2, len(vals)), min(6, len(vals)))
                chosen = set(rng.sample(vals, k))
                options[intern(g)] = tuple(intern(v) for v in vals if v in chosen)
        price = round(rng.uniform(lo, hi), 2)
        title = intern(f"{brand} {line} {' '.join(w.title() for w in attrs[0].split())} {noun.title()}") + (
            f", {attrs[1].title()}" if len(attrs) > 1 and rng.random() < 0.5 else ""
        )
        desc = rng.choice(_DESC).format(
            brand=brand, line=line, type=noun, A1=attrs[0].capitalize(), a1=attrs[0], a2=attrs[1],
            extra=rng.choice(_EXTRA),
        )
        bullets = []
        for a in attrs:
            j = rng.randrange(len(_FEATURES))
            key = (j, a)
            if key not in features:
                features[key] = _FEATURES[j].format(A=a.capitalize(), a=a)
            bullets.append(features[key])
        n_rev = rng.randint(0, 3)
        revs = tuple(rng.choice(reviews_pool[rng.choice((5, 5, 4, 4, 3, 2, 1))]) for _ in range(n_rev))
        rating = f"{sum(r.score for r in revs) / n_rev:.1f}" if revs else "N.A."
        n_ins = rng.randint(1, min(3, len(attrs)))
        ins_attrs = tuple(rng.sample(attrs, n_ins))
        a_text = ins_attrs[0] if n_ins == 1 else ", ".join(ins_attrs[:-1]) + " and " + ins_attrs[-1]
        instruction = rng.choice(_INSTRUCTION).format(a=f"{_article(a_text)} {a_text}", t=noun)
        products.append(
            Product(
                asin=asin,
                name=title,
                category=cat,
                query=intern(query),
                product_category=intern(path),
                pricing=(price,),
                price_tag=f"${price}",  # as WebShop prints a float price (engine.py:L298)
                options=options,
                attributes=attrs,
                description=desc,
                bullet_points=tuple(bullets),
                reviews=revs,
                rating=rating,
                instruction_text=instruction,
                instruction_attributes=ins_attrs,
            )
        )
    prices = {p.asin: product_price(p.pricing, rng) for p in products}
    goals = synthetic_goals(products, prices, rng, max_per_product=1)
    return Catalog(products, shuffle_goals(goals), prices, source=f"synthetic:{num_products}:seed{seed}")
