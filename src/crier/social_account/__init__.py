"""Connected social accounts."""
