"""listserv: a mailing-list manager that keeps job-seekers connected after they land a job."""

__version__ = "0.1.0"
