# summary-qa: one `qa serve` process per container. UNTESTED: no container engine runs where
# this was written; every step is an ordinary pip install from the package registries, and
# nothing is downloaded at run time (the models ship inside Python packages).
#
#   docker build -t summary-qa .
#   docker run --rm -p 127.0.0.1:7860:7860 \
#     -v /srv/summaries:/data/summaries:ro -v /srv/qa-index:/data/index summary-qa
#
# Several containers can serve one index folder (mounted read-only, `--no-update`) while one
# writer runs `qa index`; see docs/deploy.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False \
    QA_INDEX=/data/index QA_DOCS=/data/summaries

# torch first and pinned, as the CPU build: an unpinned torch pulls a multi-GB CUDA build.
# (Serving an existing index never imports it; building or updating one uses it.)
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN pip install torch==2.13.0 --index-url ${TORCH_INDEX}

WORKDIR /app
COPY pyproject.toml README.md ./
COPY qa ./qa
RUN pip install . && useradd --system --home /app qa && mkdir -p /data && chown qa /data
USER qa

EXPOSE 7860
# 0.0.0.0 inside the container so the published port reaches it; publish it on 127.0.0.1 (as
# above) or behind the reverse proxy, never straight onto a public address.
CMD ["qa", "serve", "--host", "0.0.0.0", "--port", "7860"]
