"""Traces and metrics: OpenTelemetry spans from the CLIs through workflows to SQL.

One trace per case action: the Temporal OpenTelemetry interceptor carries the context
from the starter or admin script through the workflow to each activity, and the asyncpg
instrumentation adds a span per query. Span attributes carry SQL text and Temporal ids,
never query parameters, so no personal data reaches the tracing backend.

The exporter is configuration (``WHN_OTEL_EXPORTER``): ``none`` (default), ``console``,
or ``otlp`` (endpoint from the standard ``OTEL_EXPORTER_OTLP_ENDPOINT``). Worker metrics
are Temporal SDK metrics on a Prometheus endpoint when ``WHN_METRICS_PORT`` is set.
"""

from __future__ import annotations

import logging

from opentelemetry import trace
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from whn.settings import Settings

log = logging.getLogger(__name__)

_configured = False


def setup_tracing(
    settings: Settings, *, service_name: str, exporter: SpanExporter | None = None
) -> TracerProvider | None:
    """Install the process's tracer provider (once) and instrument asyncpg.

    ``exporter`` overrides the configured one (tests pass an in-memory exporter).
    Returns the provider, or None when tracing is off.
    """
    global _configured
    if _configured:
        provider = trace.get_tracer_provider()
        return provider if isinstance(provider, TracerProvider) else None
    choice = settings.otel_exporter
    if exporter is None and choice == "none":
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif choice == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif choice == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    AsyncPGInstrumentor().instrument(tracer_provider=provider, capture_parameters=False)
    _configured = True
    log.info("tracing on: %s", "given exporter" if exporter else choice)
    return provider


def shutdown_tracing() -> None:
    """Flush spans still in a batch (call before a short-lived CLI exits)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()


def tracing_interceptor() -> TracingInterceptor:
    """The Temporal interceptor that carries trace context through workflows and activities."""
    return TracingInterceptor()


def runtime_for(settings: Settings) -> Runtime | None:
    """A Temporal runtime exporting SDK metrics to Prometheus, when a port is configured."""
    if not settings.metrics_port:
        return None
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=f"{settings.metrics_host}:{settings.metrics_port}"
            )
        )
    )
