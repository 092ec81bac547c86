"""Using a trained run: predict clips and long videos, stream frame by frame, draw labels."""
