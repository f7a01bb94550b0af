"""What operators run around the product: the `synthchain` CLI (`cli`), the UI page (`dashboard`),
version comparisons (`compare`), DAG-file sync (`dagfiles`) and storage clean-up (`gc`).

May import anything in synthchain; nothing in the core or a modality imports it.
"""
