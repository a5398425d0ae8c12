"""Google Business Profile: business locations, their local posts and their reviews."""
