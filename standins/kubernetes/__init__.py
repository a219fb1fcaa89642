"""A Kubernetes API stand-in that really runs Jobs: see `standin.KubernetesStandin`.

Container processes, volumes and their paths on this machine: see `standins.kubernetes.containers`.
"""

from standins.kubernetes.faults import Fault
from standins.kubernetes.standin import KubernetesStandin
from standins.kubernetes.store import ClusterEvent

__all__ = ["ClusterEvent", "Fault", "KubernetesStandin"]
