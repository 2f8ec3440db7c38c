"""``keda-queue-scaler simulate MANIFEST``: drive a running scaler as KEDA and the HPA would
(or, for a ScaledJob, as KEDA's job loop would).

This package owns the ``simulate`` subcommand, in parts that do not mix:

* **the model** (:mod:`.model`, with the HPA's scaling rules in :mod:`.hpa`): KEDA's scale loop
  and executor for one ScaledObject plus the HPA controller, as a deterministic state machine
  (:class:`~.model.ScaleModel`). It does no I/O and reads no clock: every method takes the
  simulated time and the readings, and returns a timeline :class:`~.model.Row`. Tests drive it
  with a fake clock and fake readings;
* **the manifest spec** (:mod:`.spec`): what the model needs of a ScaledObject
  (:class:`~.spec.ObjectSpec`), taken from the manifest model of :mod:`scaler.tools.manifest`
  without parsing the YAML again;
* **the live driver** (:mod:`.driver`): runs the model against a live scaler through
  :mod:`scaler.tools.remote`, on a real clock compressed by ``--speed``, making the calls KEDA
  makes, and following ``StreamIsActive`` for ``external-push`` triggers;
* **the output** (:mod:`.output`): the table, ``--json`` rows and the ``--plot`` chart;
* **the command** (:mod:`.command`): the arguments, the ``xxxFromEnv`` resolution and the run;
  what both runs share (exit statuses, refs) is :mod:`.runs`'s;
* **a ScaledJob** has its own parts, of the same kinds: the model of KEDA's ScaledJob loop
  (:mod:`.jobs`, rules J1-J8 with their sources in its module documentation), its spec
  (:mod:`.job_spec`), its poll driver (:mod:`.job_driver`), output (:mod:`.job_output`) and run
  (:mod:`.job_command`). No HPA is involved: H1-H7 do not apply, and J1-J8 take the place of
  K1-K7 and K9 (K8's conversion of values still holds).

Times are simulated seconds from the start (the ScaledObject's creation). Metric values and
targets are milli-units, as the HPA compares them.

What is modelled, rule by rule
==============================

KEDA (keda-protocol.md sections 1.6-1.12; KEDA's ``pkg/scaling`` sources where they are more
precise, named below)

K1. Every ``pollingInterval`` (default 30 s), the first at t=0: for every trigger (in parallel)
    ``GetMetricSpec``, then for every returned spec ``GetMetrics`` followed by ``IsActive``
    (``IsActive`` only after a successful ``GetMetrics``). A failed ``GetMetricSpec`` (or an
    empty answer) and a failed ``GetMetrics``/``IsActive`` are retried once at once, as KEDA
    rebuilds the scaler and calls again [1.6, 1.11].
K2. A trigger is active iff its ``IsActive`` said true; a failed trigger is an error and never
    active. The object is active iff any trigger is [1.7].
K3. Executor, active: with 0 replicas (or fewer than ``minReplicaCount`` while
    ``idleReplicaCount`` is set) scale to ``max(minReplicaCount, 1)`` at once and set
    ``lastActiveTime``; otherwise set ``lastActiveTime`` unless a trigger failed (KEDA then only
    marks Ready=Unknown and leaves ``lastActiveTime`` alone) [1.7, 1.11; executor
    ``scale_scaledobjects.go``].
K4. Executor, inactive: a failed trigger leaves the replicas untouched when there is no
    ``fallback`` or ``fallback.replicas`` is not 0 [1.11]. Otherwise, with ``minReplicaCount`` 0
    or ``idleReplicaCount`` set, the replicas go to ``idleReplicaCount`` (else
    ``minReplicaCount``) once ``cooldownPeriod`` (default 300 s) has passed since
    ``lastActiveTime``, or ``initialCooldownPeriod`` (default 0) since creation when never
    active [1.7]. Below ``minReplicaCount`` without ``idleReplicaCount``: scale to the minimum.
    "Passed" includes the boundary: status times have whole-second precision, so the poll exactly
    ``cooldownPeriod`` after ``lastActiveTime`` already sees it elapsed.
K5. ``external-push``: a ``StreamIsActive`` ``true`` runs K3 at once; ``false`` is ignored (KEDA
    >= 2.18). A stream that ends is reopened after 2 s, doubling to 60 s, back to 2 s after an
    OK end [1.8]. Pushes and polls of one object are serialised, as KEDA's per-object lock does.
K6. The HPA KEDA builds: one External metric ``s{index}-{name}`` per spec of the first
    ``GetMetricSpec`` (a failure there means no HPA: ``simulate`` stops), target ``AverageValue``
    or ``Value`` from the trigger's ``metricType``, ``minReplicas = max(minReplicaCount, 1)``,
    ``maxReplicas = maxReplicaCount`` (default 100), ``behavior`` copied from
    ``advanced.horizontalPodAutoscalerConfig.behavior`` and left unset otherwise [1.7].
K7. Each HPA query of a metric: ``GetMetricSpec`` on every trigger, then ``GetMetrics`` +
    ``IsActive`` on the one serving the metric; with ``useCachedMetrics: true`` the last poll's
    reading is used instead (when there is one) [1.6].
K8. Values: ``metricValueFloat`` when > 0, else ``metricValue``; targets: ``targetSizeFloat``
    when > 0, else ``targetSize``. A float becomes milli-units as KEDA v2.20+ makes a quantity
    of it, ``%.3f``: rounded to 3 decimals; NaN, infinities and (since v2.20.2) negative values
    count 0 (keda#7880). Several values of one answer are summed [1.10; the rule is
    :func:`scaler.tools.replicas.milli_units`, the one ``check`` uses too].
K9. Fallback acts on the HPA path only (KEDA calls ``GetMetricsWithFallback`` from the metrics
    adapter path, not from the poll loop; keda-protocol.md 1.11 says both paths count, KEDA's
    ``scale_handler.go`` does not): each failed read of an ``AverageValue`` metric adds one to
    its failure count, a success resets it; past ``failureThreshold`` the HPA receives
    ``int(target) x replicas`` instead of an error, ``replicas`` per ``fallback.behavior``
    (``static``: ``fallback.replicas``; ``currentReplicas``; ``currentReplicasIfHigher``;
    ``currentReplicasIfLower``) (``fallback/fallback.go``: note the target's fraction is
    dropped). A failed ``GetMetricSpec`` leaves no spec to count against, so fallback never
    starts (keda#8056). ``Value`` metrics get no fallback. At 0 replicas the HPA reads nothing,
    so fallback cannot act there either.

HPA (Kubernetes ``pkg/controller/podautoscaler``: ``horizontal.go``, ``replica_calculator.go``;
https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/)

H1. A sync every ``--hpa-sync`` seconds (kube-controller-manager's
    ``--horizontal-pod-autoscaler-sync-period``, default 15), the first at t=0 right after the
    first poll. The first sync records the current replica count as a recommendation.
H2. 0 replicas: scaling disabled, nothing read (KEDA owns 0 <-> 1). Above ``maxReplicas``: set to
    the maximum; below ``minReplicas``: set to the minimum (no metrics, no stabilisation).
H3. Per metric, ``AverageValue``: ``ratio = value / (target x replicas)``; within tolerance keep
    the replicas, else ``ceil(value / target)``. ``Value``: ``ratio = value / target``; within
    tolerance keep, else ``ceil(ratio x readyPods)`` with every pod ready. Within tolerance means
    ``1 - down <= ratio <= 1 + up``, both 0.1 (``--hpa-tolerance``) unless the behavior sets
    ``tolerance`` for that direction (Kubernetes >= 1.33, feature HPAConfigurableTolerance)
    [:func:`scaler.tools.replicas.hpa_proposal`].
H4. The desired count is the maximum over the metrics read. If every metric failed, or one failed
    and the others want fewer replicas than now, the HPA does nothing this sync.
H5. No ``behavior`` (KEDA's default): the recommendation is the maximum of the recommendations of
    the last 300 s (kube-controller-manager's ``--horizontal-pod-autoscaler-downscale-
    stabilization``, ``--hpa-downscale-stabilization`` here), then clamped to
    ``[minReplicas, min(maxReplicas, max(2 x replicas, 4))]``.
H6. With ``behavior``, missing fields get the documented defaults (scaleUp: window 0, policies
    4 Pods and 100 Percent per 15 s, ``selectPolicy: Max``; scaleDown: window 300 s (the
    controller flag), 100 Percent per 15 s, ``Max``). The recommendation is the current count
    brought within [lowest recommendation in the scaleUp window, highest in the scaleDown
    window] (a window holds the recommendations strictly newer than now minus its length). Then
    the rate: scale-up limit = over the policies (Max: the largest, Min: the smallest) of
    ``start + Pods`` or ``ceil(start x (1 + Percent/100))``, scale-down limit = ``start - Pods``
    or ``int(start x (1 - Percent/100))`` (Max: the smallest, Min: the largest), where ``start``
    is the count before the HPA's own changes of the policy's period; ``Disabled`` freezes that
    direction. The result is clamped to ``[minReplicas, maxReplicas]``.
H7. Only the HPA's own changes are scale events for H6's periods; KEDA's activations and
    cooldowns are not.

Not modelled: pod start-up and readiness (every pod is ready at once, which the HPA's
missing-pod and unready-pod handling would otherwise temper), ``advanced.scalingModifiers``,
pausing, CPU/memory and non-external triggers (refused), a change of the
targets after the HPA is built, and the jitter of real controllers (events here fall exactly on
the interval multiples).
"""
