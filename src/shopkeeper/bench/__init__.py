"""The benchmarks behind `shopkeeper bench`: real servers, real HTTP, figures checked against SPEC §11."""
