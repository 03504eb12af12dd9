"""`svqm simulate`: a synthetic population run through a scheme over simulated time.

The simulated people act through the real services (open_application, pledges, uploads, reviews,
scores, fire, file_report) on a throwaway database, under an injected clock; the deadline sweep
runs once a simulated day and the outbox is dispatched to a mailer that only counts.
"""

from svqm.simulate.report import SimulationResult, report_table
from svqm.simulate.run import Simulation

__all__ = ["Simulation", "SimulationResult", "report_table"]
