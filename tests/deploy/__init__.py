"""Static and functional checks of the deployment files: Dockerfile, compose, manifests, chart."""
