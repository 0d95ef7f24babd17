module sensor-average

go 1.25
