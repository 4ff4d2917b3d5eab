"""Reading image and mask files (eager and lazy) and writing files atomically and safely."""
