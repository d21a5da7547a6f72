"""Pydantic models of the REST surface, one module per resource (XCreate / XPublic / XsPublic{data,count})."""
