"""cce4long: the Privacy Plane from Python (and from an Explore notebook).

    import cce4long
    cce4long.datasets()                       # the catalog, with your rentals
    df = cce4long.sample("hospital-claims")   # the desensitized sample, a DataFrame
    job = cce4long.submit(script="analysis.py", datasets=["hospital-claims"])
    job.wait()                                # RELEASED, HELD, REJECTED, FAILED or CANCELLED
    job.download("result.bundle")             # size and SHA-256 checked

Pure standard library (pandas only for sample()). Configuration: see
cce4long._config (session file, environment, `cce login`'s config) or call
cce4long.connect(url=, token=, ca=). Every plane failure is a PlaneError.
"""

from ._api import (
    FINAL_STATES,
    WAIT_STATES,
    Base,
    Dataset,
    Job,
    JobStatus,
    SampleFile,
    bases,
    client,
    connect,
    datasets,
    job,
    jobs,
    sample,
    sample_files,
    submit,
)
from ._client import Client, PlaneError

__version__ = "0.1.0"

__all__ = [
    "Base", "Client", "Dataset", "FINAL_STATES", "Job", "JobStatus", "PlaneError", "SampleFile",
    "WAIT_STATES", "bases", "client", "connect", "datasets", "job", "jobs", "sample",
    "sample_files", "submit",
]
