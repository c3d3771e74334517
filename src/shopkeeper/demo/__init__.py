"""The synthetic demo shop behind `shopkeeper demo`: people, a catalogue, a year of behaviour."""
