# The image of the Helm chart (helm/slamon): `slamon` as the entrypoint, run as a non-root user.
#   docker build -t slamon:0.1.0 .
# Pinging needs unprivileged ICMP (the chart sets net.ipv4.ping_group_range on the shard pods) or
# NET_RAW as root (the chart's icmp.mode netRaw); see docs/monitoring.md#icmp-privileges.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY slamon ./slamon
RUN pip install . \
    && rm -rf /src \
    && groupadd --system --gid 10001 slamon \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/slamon --no-create-home slamon \
    && install -d -o 10001 -g 10001 /etc/slamon /var/lib/slamon

WORKDIR /var/lib/slamon
USER 10001:10001
EXPOSE 9108
ENTRYPOINT ["slamon"]
CMD ["--help"]
