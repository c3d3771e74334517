"""Customer scores: RFM quintiles, CLV (BG/NBD + Gamma-Gamma), churn risk, NPS and CSAT."""
