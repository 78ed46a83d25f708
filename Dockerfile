# syntax=docker/dockerfile:1
# One image for the web app and the training workers (docker-compose.yml runs both).
#
#   docker build -t prefloop .                               with the training stack (torch, TRL, PEFT)
#   docker build --build-arg EXTRAS= -t prefloop-web .       web app only, no torch
#
# PyPI's torch wheels carry their CUDA runtime: on a host with the NVIDIA Container Toolkit the
# same image trains on GPU (compose reserves the device); elsewhere it trains on CPU.
FROM python:3.11-slim

ARG EXTRAS=train
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATA_DIR=/data \
    HOST=0.0.0.0 \
    PORT=8000 \
    HF_HOME=/data/huggingface \
    TOKENIZERS_PARALLELISM=false

WORKDIR /app
RUN useradd --create-home --uid 10001 prefloop \
 && mkdir -p /data \
 && chown prefloop:prefloop /data

# Dependencies first (from pyproject.toml alone), so a code change does not reinstall torch.
COPY pyproject.toml setup.py README.md LICENSE ./
RUN mkdir -p app training \
 && echo '__version__ = "0"' > app/__init__.py && touch training/__init__.py \
 && pip install -e ".${EXTRAS:+[$EXTRAS]}"

# Then the package itself, installed as a wheel is (templates, static files and migrations
# inside it, found through app.resources); the dependencies are already there.
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
COPY training ./training
COPY app ./app
RUN pip install --no-deps . && rm -rf build *.egg-info

USER prefloop
VOLUME ["/data"]
EXPOSE 8000
CMD ["prefloop", "serve"]
