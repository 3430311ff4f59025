from kit.migrations import run_env
from services.incidents.models import Base

run_env(Base.metadata)
