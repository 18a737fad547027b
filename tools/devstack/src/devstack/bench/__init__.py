"""The platform's benchmarks, run by ``make bench`` (``python -m devstack.bench``).

- ``cli``: the run, in order, and its options (``--tiny``, ``--full``, ``--skip``);
- ``history``: synthetic event histories in the shape of the DfE's figures;
- ``kafka_bench``: the deadlines worker beside a bare consumer and Kafka's own tool;
- ``e2e``: request to clock event to email;
- ``loadgen``: the open-loop HTTP load generator for intake's latency;
- ``replay``: the clock engine over a history, in-process;
- ``machine``, ``stats``, ``report``: what it ran on, the statistics, the outputs.

Nothing here is a timed assertion: the figures are written to ``bench/results/`` and
``docs/performance.md`` and judged against their targets there.
"""
