"""Data the course ships or generates: nothing here is downloaded."""
