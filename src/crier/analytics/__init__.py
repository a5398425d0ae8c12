"""Analytics: figures collected from the networks after publishing, days aggregated in the
workspace's timezone, and what reads them."""
