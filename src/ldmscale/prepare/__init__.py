"""The prepare stage: components every later job needs, built once per study."""
