# The image of the worker and the CLIs (whn-worker, whn-admin, whn-intake,
# whn-codec-server, python -m whn.migrate). Built by `docker compose build`.
#
# Installed the way the Makefile installs it, from pyproject.toml and its pinned
# dependencies, without the dev extra, into a virtualenv copied into a clean stage.

FROM python:3.11.14-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/whn
ENV PATH=/opt/whn/bin:$PATH

WORKDIR /src
# What pyproject.toml packages: the py-module and every package it finds
# (tests/deploy/test_dockerfile.py keeps this list in step with pyproject.toml).
COPY pyproject.toml worker.py ./
COPY domain/ domain/
COPY workflows/ workflows/
COPY activities/ activities/
COPY starter/ starter/
COPY whn/ whn/
COPY web/ web/
COPY migrations/ migrations/
# The reporter's page's GOV.UK styles into web/static/govuk (not committed): without npm
# here, scripts/vendor_govuk.py fetches the locked tarball and checks its integrity hash.
COPY scripts/vendor_govuk.py scripts/
RUN python scripts/vendor_govuk.py \
    && pip install --no-cache-dir .


FROM python:3.11.14-slim-bookworm

RUN groupadd --system --gid 10001 whn \
    && useradd --system --uid 10001 --gid whn --create-home --home-dir /home/whn \
        --shell /usr/sbin/nologin whn

COPY --from=build /opt/whn /opt/whn

ENV PATH=/opt/whn/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WHN_DATA_DIR=/home/whn/.whn

USER 10001:10001
WORKDIR /home/whn

# No HEALTHCHECK here: the worker only polls Temporal and listens on no port, so there is
# nothing for a probe to ask; a dead worker exits and the orchestrator restarts it. The
# codec server, which does listen, gets its healthcheck in docker-compose.yml.
ENTRYPOINT ["whn-worker"]
