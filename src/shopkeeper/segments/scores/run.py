"""Compute every score of a workspace, each model in its own transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shopkeeper.db.session import Database
from shopkeeper.segments.scores import clv, rfm, satisfaction


@dataclass(frozen=True, slots=True)
class ScoresReport:
    rfm_customers: int
    clv: clv.ClvReport
    satisfaction: satisfaction.Satisfaction

    def lines(self) -> list[str]:
        out = [f"RFM            {self.rfm_customers:,} buyers scored"]
        c = self.clv
        if c.bgnbd is not None:
            b = c.bgnbd
            out.append(
                f"BG/NBD         r={b['r']:.4f} alpha={b['alpha']:.4f} a={b['a']:.4f} b={b['b']:.4f} "
                f"(LL {b['log_likelihood']:.1f}; {c.buyers:,} buyers, weeks)"
            )
        if c.gamma_gamma is not None:
            g = c.gamma_gamma
            params = f"p={g['p']:.4f} q={g['q']:.4f} gamma={g['gamma']:.4f}"
            out.append(f"Gamma-Gamma    {params} ({c.repeat_buyers:,} repeat buyers)")
        if c.note:
            out.append(f"CLV            {c.note}")
        s = self.satisfaction
        nps = "–" if s.nps is None else f"{s.nps:+.1f}"
        csat = "–" if s.csat is None else f"{s.csat:.1f}%"
        out.append(
            f"NPS {nps} ({s.nps_respondents:,} respondents), CSAT {csat} ({s.csat_answers:,} answers), "
            f"last {s.window_days} days"
        )
        return out


def compute_all(db: Database, workspace_id: str, now: datetime) -> ScoresReport:
    with db.session(write=True) as session:
        rfm_count = rfm.compute(session, workspace_id, now)
    with db.session(write=True) as session:
        clv_report = clv.compute(session, workspace_id, now)
    with db.session(write=True) as session:
        sat = satisfaction.compute(session, workspace_id, now)
    return ScoresReport(rfm_count, clv_report, sat)
