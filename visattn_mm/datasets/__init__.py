from .ade20k import (ADE_INSTANCE_SPLITS, convert_ade20k_instances, instance_annotations,
                     read_categories, read_category_mapping)
from .market1501 import (DISTRACTOR_PID, GALLERY_FOLDER, JUNK_PID, QUERY_FOLDER, TRAIN_FOLDER,
                         MarketName, convert_market1501, list_market_folder, parse_market_name,
                         parse_reid_name)

__all__ = [
    'DISTRACTOR_PID', 'JUNK_PID', 'TRAIN_FOLDER', 'GALLERY_FOLDER', 'QUERY_FOLDER', 'MarketName',
    'parse_market_name', 'parse_reid_name', 'list_market_folder', 'convert_market1501',
    'ADE_INSTANCE_SPLITS', 'read_category_mapping', 'read_categories', 'instance_annotations',
    'convert_ade20k_instances'
]
