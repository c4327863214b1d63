from .market1501 import Market1501Metric, evaluate_market1501, parse_reid_name

__all__ = ['Market1501Metric', 'evaluate_market1501', 'parse_reid_name']
