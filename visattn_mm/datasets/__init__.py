from .market1501 import (DISTRACTOR_PID, JUNK_PID, MarketName, parse_market_name,
                         parse_reid_name)

__all__ = ['DISTRACTOR_PID', 'JUNK_PID', 'MarketName', 'parse_market_name', 'parse_reid_name']
