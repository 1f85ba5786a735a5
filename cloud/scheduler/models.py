"""The scheduler keeps no tables of its own: claims and allocations live in cloud/compute."""
